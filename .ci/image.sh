#!/usr/bin/env bash
# `make image`: the stashplan OCI image, built with no registry. The root filesystem comes from Debian packages
# (mmdebstrap, trixie: PostgreSQL 17's client, whose pg_dump dumps every older server, MariaDB 11.8's, Redis 8's,
# SQLite 3.46 and Python 3.13); the wheel and its dependencies are installed into it for that Python; umoci turns
# it into an OCI image (user 65532, entrypoint stashplan) written as build/image/stashplan-<version>.oci.tar.
# Reproducible: SOURCE_DATE_EPOCH (default: the last commit's time) fixes every timestamp; the same commit, the
# same Debian archive state and the same PyPI files give the same digest (the archive cannot be pinned here:
# snapshot.debian.org is not reachable, so a Debian update changes the digest; build/image/packages.txt lists
# the versions that went in). Needs mmdebstrap, umoci and binutils' strip (Debian packages) and user namespaces
# (mode unshare).
# Slimmed to a 185 MiB root filesystem (was 337 MiB; the aim is at most 200): of the Python packages only what
# stashplan runs (no kubernetes generated API classes and models, no aiohttp family, no tests, stubs, C sources),
# extension modules stripped, bytecode only for the dependencies (their tracebacks show file and line but no
# source text; stashplan's own packages keep sources and bytecode); of MariaDB's and Redis' tools only the
# clients, and Redis' server, which a Redis backup runs; no iconv modules, Python test package or help topics.
# Every module of stashplan and providers is imported in the finished root filesystem, or the build fails.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
SUITE=trixie
PYVER=3.13  # trixie's python3
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
OUT=build/image
CACHE=.cache/image
FASTCDC=1.7.0  # PyPI has no cp313 wheel of it: built here from its sdist, in a trixie root filesystem
VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' stashplan/__init__.py)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export TZ=UTC LC_ALL=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)

for tool in mmdebstrap umoci strip; do
  command -v "$tool" >/dev/null ||
    { echo "image: $tool is missing (apt-get install mmdebstrap umoci binutils)" >&2; exit 1; }
done
started=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/stashplan-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
rm -rf "$OUT" && mkdir -p "$OUT" "$CACHE"

# 1. The wheel, built from a copy of the sources (no stale build/ of the checkout in it).
mkdir "$work/src"
cp -a pyproject.toml README.md stashplan providers specs "$work/src/"
find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
"$PY" -m pip wheel -q --no-deps -w "$OUT/wheels" "$work/src"
wheel=$(ls "$OUT"/wheels/stashplan-"$VERSION"-*.whl)

# 2. fastcdc's Cython extension for Python 3.13, compiled in a throwaway trixie root filesystem (cached).
wheels313="$CACHE/wheels-cp313"
if ! ls "$wheels313"/fastcdc-"$FASTCDC"-cp313-*.whl >/dev/null 2>&1; then
  "$PY" -m pip download -q --no-deps --no-binary :all: -d "$work/sdist" "fastcdc==$FASTCDC"
  mkdir -p "$work/built"
  mmdebstrap --quiet --mode=unshare --variant=apt \
    --include=python3-dev,gcc,libc6-dev,cython3,python3-poetry-core,python3-setuptools,python3-pip \
    --customize-hook="copy-in $work/sdist/fastcdc-$FASTCDC.tar.gz /tmp" \
    --customize-hook='chroot "$1" sh -ec "cd /tmp && tar xzf fastcdc-*.tar.gz && cd fastcdc-*/ &&
        python3 -m pip wheel -q --no-deps --no-build-isolation -w /tmp/wheels ."' \
    --customize-hook="copy-out /tmp/wheels $work/built" \
    "$SUITE" /dev/null "deb $MIRROR $SUITE main"
  built=$(ls "$work"/built/wheels/fastcdc-"$FASTCDC"-cp313-*.whl)  # a py3-none wheel means Cython failed
  mkdir -p "$wheels313" && cp "$built" "$wheels313/"
fi

# 3. stashplan and its dependencies for trixie's Python, into /usr/local, pinned by .ci/image-constraints.txt (the
#    versions of the project's venv; regenerate it with `pip install --target DIR` as below without -c, then
#    `pip list --path DIR --format freeze`). Left out, as nothing of stashplan runs them: kubernetes' asyncio
#    client (41 MB) and aiohttp with its dependencies, which only that client uses (12 MB); kubernetes' generated
#    API classes and models (52 MB: stashplan calls the API server through ApiClient.param_serialize/call_api
#    with its own paths and reads the JSON itself, and kubernetes.client imports them lazily, by name, so nothing
#    loads them; `kubernetes.client.CoreV1Api` and the like would fail with ModuleNotFoundError) and the
#    deprecated kubernetes.client.apis alias; zstandard's cffi backend (the C one is used); the packages' own test
#    suites, type stubs, Cython/C sources and man pages; botocore's models of AWS services other than S3 and the
#    credential services (STS, SSO): 20 MB. Extension modules are stripped of symbols and debug information
#    (--strip-unneeded keeps what the dynamic loader needs): 23 MB. The dist-info RECORD files are left as pip
#    wrote them (they list the removed files; nothing in the image runs pip).
site="$work/overlay/usr/local/lib/python$PYVER/dist-packages"
platforms=()
for glibc in 2_41 2_39 2_34 2_31 2_28 2_27 2_24 2_17 2_12 2_5; do platforms+=(--platform "manylinux_${glibc}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
"$PY" -m pip install -q --no-compile --target "$site" --python-version "$PYVER" --implementation cp \
  --abi "cp${PYVER/./}" --abi abi3 --abi none "${platforms[@]}" --only-binary=:all: \
  --find-links "$wheels313" -c .ci/image-constraints.txt "$wheel"
rm -rf "$site/bin" "$site/share" "$site"/*.dist-info/direct_url.json "$site/kubernetes/aio" \
  "$site"/zstandard/*cffi* "$site/Crypto/SelfTest" "$site/kubernetes/client/apis"
for dist in aiohttp aiohttp_retry aiosignal aiohappyeyeballs frozenlist multidict yarl propcache; do
  rm -rf "${site:?}/$dist" "$site/$dist"-*.dist-info
done
find "$site/kubernetes/client/api" "$site/kubernetes/client/models" -mindepth 1 ! -name __init__.py -exec rm -rf {} +
find "$site" -mindepth 2 -type d \( -name tests -o -name test \) -prune -exec rm -rf {} +
find "$site/kubernetes" -type f \( -name '*_test.py' -o -name 'test_*.py' \) -delete
find "$site" -type f \( -name '*.pyi' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.c' \) -delete
find "$site" -type f -name '*.so' -exec strip --strip-unneeded {} +
find "$site/botocore/data" -mindepth 1 -maxdepth 1 -type d ! -name s3 ! -name sts ! -name sso ! -name sso-oidc \
  -exec rm -rf {} +
mkdir -p "$work/overlay/usr/local/bin"
printf '#!/usr/bin/python3\nimport sys\nfrom stashplan.entry import main\nsys.exit(main())\n' \
  >"$work/overlay/usr/local/bin/stashplan"
chmod 0755 "$work/overlay/usr/local/bin/stashplan"
# Run by the image's python3 (its bytecode version): stashplan and providers keep their sources with bytecode in
# __pycache__; every other package is bytecode only, a sourceless .pyc in place of each .py (61 MB of sources
# less). Hash-based pycs, so no file time goes into them.
cat >"$work/bytecode.py" <<'EOF'
import compileall, os, re, sys


def main(site: str) -> None:
    mode, own = compileall.py_compile.PycInvalidationMode.UNCHECKED_HASH, ("stashplan", "providers")
    ok = all(compileall.compile_dir(f"{site}/{p}", quiet=1, workers=0, invalidation_mode=mode) for p in own)
    ok = compileall.compile_dir(site, quiet=1, workers=0, invalidation_mode=mode, legacy=True,
                                rx=re.compile(f"^{re.escape(site)}/({'|'.join(own)})/")) and ok
    if not ok:
        sys.exit("image: some Python file does not compile")
    for d, _, files in os.walk(site):
        if d.startswith(tuple(f"{site}/{p}/" for p in own)) or d in (f"{site}/{p}" for p in own):
            continue
        for f in files:
            if f.endswith(".py"):
                if not os.path.exists(f"{d}/{f}c"):
                    sys.exit(f"image: {d}/{f} was not compiled")
                os.remove(f"{d}/{f}")


if __name__ == "__main__":  # compileall's workers are new processes that import this file
    main(sys.argv[1])
EOF
# Every module of stashplan and providers imports in the finished root filesystem (the transfer, kube and storage
# backend paths among them): what the slimming above removed is not needed by any of them.
cat >"$work/imports.py" <<'EOF'
import importlib, pkgutil, sys
import providers, stashplan
names = [m.name for p in (stashplan, providers) for m in pkgutil.walk_packages(p.__path__, p.__name__ + ".")
         if not m.name.endswith("__main__")]
failed = []
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {exc!r}")
if failed or len(names) < 100:
    sys.exit("image: modules that do not import: " + "; ".join(failed or ["(too few modules found)"]))
print(f"image: {len(names)} modules of stashplan and providers import")
EOF

# 4. The root filesystem: Debian packages, the overlay, compiled bytecode, user 65532; a reproducible tarball.
#    Slimmed: no documentation but copyright files; of MariaDB's client tools only the client, the dump tool and
#    the admin tool (each of the other 19 is a 4.5 MB static binary, or a Perl script); of Redis' redis-cli and
#    redis-check-rdb, which is the server binary: linked as redis-server, as Debian's redis-server package does
#    (without its service, user and configuration), for the private server a Redis backup loads its RDB into
#    (providers/databases/redis_stream.py; the image had none, so a Redis backup failed); Perl and the Perl
#    modules of MariaDB's scripts purged (PostgreSQL's pg_wrapper runs on perl-base); glibc's iconv modules
#    (9 MB: of what the image holds only bash, tar, diff and iconv itself call iconv, and UTF-8 and Latin-1 are
#    built into glibc; Python, the database clients and libpq do not use it), Python's test package and help
#    topics (pydoc_data). The build host's /etc/resolv.conf and /etc/hostname, which mmdebstrap copies in, are
#    emptied: a container runtime mounts its own over them, and the image must not depend on where it was built.
mmdebstrap --quiet --mode=unshare --variant=essential \
  --include=python3,postgresql-client,mariadb-client,redis-tools,sqlite3,ca-certificates,tzdata \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
  --customize-hook="sync-in $work/overlay /" \
  --customize-hook="copy-in $work/bytecode.py $work/imports.py /tmp" \
  --customize-hook="chroot \"\$1\" python3 /tmp/bytecode.py /usr/local/lib/python$PYVER/dist-packages" \
  --customize-hook='echo "stashplan:x:65532:65532:stashplan:/home/stashplan:/usr/sbin/nologin" >>"$1/etc/passwd"
      echo "stashplan:x:65532:" >>"$1/etc/group"
      mkdir -p "$1/home/stashplan" && chown 65532:65532 "$1/home/stashplan" && chmod 0750 "$1/home/stashplan"' \
  --customize-hook='cd "$1/usr/bin" && for f in mariadb-* mysql*; do case $f in mariadb-dump|mariadb-admin|mysql|mysqldump|mysqladmin) ;; *) rm -f "$f" ;; esac; done
      rm -f innotop mytop msql2mysql my_print_defaults perror replace resolve_stack_dump redis-benchmark redis-check-aof
      ln -s redis-check-rdb redis-server
      rm -rf "$1/usr/lib/x86_64-linux-gnu/gconv"
      rm -rf "$1/usr/lib/python'$PYVER'/test" "$1/usr/lib/python'$PYVER'/pydoc_data"' \
  --customize-hook='chroot "$1" dpkg --purge --force-depends perl perl-modules-5.40 libperl5.40 libdbi-perl libdbd-mariadb-perl libconfig-inifiles-perl libterm-readkey-perl >/dev/null' \
  --customize-hook='for t in stashplan pg_dump pg_dumpall psql pg_isready mariadb mariadb-dump mysql mysqldump mysqladmin redis-cli redis-server sqlite3; do chroot "$1" $t --version >/dev/null || { echo "image: $t does not run" >&2; exit 1; }; done; chroot "$1" pg_dump --version' \
  --customize-hook='chroot "$1" python3 /tmp/imports.py' \
  --customize-hook="chroot \"\$1\" dpkg-query -W >$OUT/packages.txt" \
  --customize-hook='rm -rf "$1"/var/cache/* "$1"/var/log/*.log "$1"/var/lib/apt/lists/* "$1"/tmp/*
      rm -f "$1/etc/resolv.conf" "$1/etc/hostname" && : >"$1/etc/resolv.conf" && : >"$1/etc/hostname"' \
  "$SUITE" "$work/rootfs.tar" "deb $MIRROR $SUITE main" "deb $SECURITY $SUITE-security main"

# 5. The OCI image: one layer (the tarball), the config, written as an OCI archive.
layout="$work/oci"
umoci init --layout "$layout"
umoci new --image "$layout:$VERSION"
umoci raw add-layer --image "$layout:$VERSION" --history.created "$CREATED" \
  --history.created_by "mmdebstrap $SUITE + stashplan $VERSION (.ci/image.sh)" "$work/rootfs.tar"
umoci config --image "$layout:$VERSION" --no-history --created "$CREATED" --author stashplan \
  --config.user 65532:65532 --config.entrypoint stashplan --config.workingdir /home/stashplan \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --config.env HOME=/home/stashplan \
  --config.env PYTHONUNBUFFERED=1 --config.env PYTHONDONTWRITEBYTECODE=1 --config.env STASHPLAN_CLUSTER=kube \
  --config.label "org.opencontainers.image.version=$VERSION" \
  --config.label "org.opencontainers.image.title=stashplan"
umoci gc --layout "$layout"
archive="$OUT/stashplan-$VERSION.oci.tar"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$layout" -cf "$archive" .

manifest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' \
  "$layout/index.json")
echo "$manifest" >"$OUT/digest"
rootfs_mib=$(( $(stat -c %s "$work/rootfs.tar") / 1048576 ))
echo "image: $archive"
echo "image: digest $manifest (the manifest's; a registry shows the same after skopeo copy)"
echo "image: root filesystem ${rootfs_mib} MiB uncompressed, archive $(( $(stat -c %s "$archive") / 1048576 )) MiB" \
  "(gzip layer), $(wc -l <"$OUT/packages.txt") Debian packages, built in $(( $(date +%s) - started )) s"
