# stashplan: make install | demo | test | lint | bench | kube-env | kube-e2e | chart | image
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install services demo test test-heavy lint bench fuzz soak docs crds clean kube-env kube-e2e chart image

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Debian packages and database services the tests and benchmarks use (installs/starts only what is missing).
services:
	bash .ci/services.sh

demo: install
	@command -v sqlite3 >/dev/null || bash .ci/services.sh --only sqlite3
	$(BIN)/python -m stashplan.demo $(DEMO_ARGS)

test: install services
	$(BIN)/python -m pytest -q -m "not heavy"

# The tests marked heavy: minutes of real servers end to end (PostgreSQL PITR on private instances, the wheel in
# a clean venv, the image under runc, restic's deepest trees). CI runs them after make test.
test-heavy: install services
	$(BIN)/python -m pytest -q -m heavy

# Minutes of the local loop over 20 configurations, killed with -9 twice; signals at random moments.
soak: install services
	$(BIN)/python -m pytest -q -s tests/soak/soak_loop.py tests/soak/soak_signals.py

lint: install
	$(BIN)/ruff check stashplan providers tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install services
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Repository fault injection at scale: FUZZ_KILLS seeded random SIGKILLs (a tenth on S3 through a proxy cutting
# the listings of every prune and forget), FUZZ_CUTS operations under cut listings (FUZZ_SEED replays a run);
# then 20,000 generated and mutated manifests per strategy thrown at `plan` (make test runs 670 each).
fuzz: install
	FUZZ_KILLS=$${FUZZ_KILLS:-500} $(BIN)/python -m pytest -q -p no:randomly tests/integration/test_repo_fault_injection.py
	FUZZ_CUTS=$${FUZZ_CUTS:-240} $(BIN)/python -m pytest -q -p no:randomly tests/integration/test_repo_cut_listings_fuzz.py
	STASHPLAN_FUZZ_EXAMPLES=20000 $(BIN)/python -m pytest -q tests/unit/test_plan_fuzz.py

# A real control plane (etcd, kube-apiserver, kube-controller-manager) built from tests/kube/go.mod
# into .cache/kube/ once per machine (long the first time), started on loopback and stopped again;
# and helm (tests/kube/build-helm.sh), which the chart's end-to-end test installs with.
kube-env: install
	bash tests/kube/build.sh
	bash tests/kube/build-helm.sh
	$(BIN)/python -m tests.kube.controlplane --check

# The cluster contract, install, RBAC and end-to-end tests against that control plane; the stashplan image's
# pods (operator, trigger and backup/restore Jobs) run from the image under runc, built first when it does not
# hold this checkout's code (STASHPLAN_TEST_KUBELET_RUNTIME=process: as local processes instead).
kube-e2e: kube-env services
	STASHPLAN_TEST_KUBELET_RUNTIME=$${STASHPLAN_TEST_KUBELET_RUNTIME:-runc} $(BIN)/python -m pytest -q --real-kube -m real_kube

# The Helm chart (specs/chart): helm built from its Go module (helm.sh/helm/v4, pinned in tests/kube/build-helm.sh)
# into .cache/helm-<version>/ once per machine, `helm lint --strict`, and the tests marked helm: the default
# `helm template` renders what `stashplan install` prints, and each value's switch.
chart: install
	$$(bash tests/kube/build-helm.sh) lint --strict specs/chart
	$(BIN)/python -m pytest -q -p no:randomly --helm -m helm tests/integration/test_chart_render.py

# The README's screenshot of `stashplan status` (docs/status.png), rendered from a terminal by its test.
docs: install services
	STASHPLAN_WRITE_DOCS=1 $(BIN)/python -m pytest -q -p no:randomly tests/integration/test_status_overview.py -k screenshot

# The OCI image from Debian packages (mmdebstrap, trixie) and the wheel, with no registry: build/image/*.oci.tar,
# its digest printed (.ci/image.sh; needs the Debian packages mmdebstrap and umoci, and user namespaces).
image: install
	@command -v mmdebstrap >/dev/null && command -v umoci >/dev/null || apt-get install -y -q mmdebstrap umoci
	PY=$(BIN)/python bash .ci/image.sh

crds: install
	$(BIN)/stashplan crds --out-dir specs/crds
	$(BIN)/stashplan crds --out-dir specs/chart/crds

clean:
	rm -rf $(VENV) .stashplan demo-out bench-out
