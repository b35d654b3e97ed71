#!/usr/bin/env bash
# Build helm from the Go module helm.sh/helm/v4 at a pinned version (`make chart`), once per machine.
# The binary goes to .cache/helm-<version>/helm (modules and build cache under .cache/gomod, .cache/gobuild);
# prints its path.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
version="${HELM_VERSION:-v4.3.2}"
out="$root/.cache/helm-$version"
if [ -x "$out/helm" ]; then
    echo "$out/helm"
    exit 0
fi
command -v go >/dev/null || { echo "chart: no Go toolchain on PATH" >&2; exit 1; }
rm -rf "$out/tmp" && mkdir -p "$out/tmp"
start=$(date +%s)
echo "chart: building helm $version into $out" >&2
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
GOMODCACHE="$root/.cache/gomod" GOCACHE="$root/.cache/gobuild" GOFLAGS="-mod=mod -buildvcs=false" \
    GOBIN="$out/tmp" nice -n 10 go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v4/cmd/helm@$version"
mv "$out/tmp/helm" "$out/helm" && rmdir "$out/tmp"
echo "chart: built helm in $(( $(date +%s) - start )) s" >&2
echo "$out/helm"
