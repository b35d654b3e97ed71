#!/usr/bin/env bash
# Install or build the storage emulators the tests start, idempotently, into the git-ignored .cache/:
# Swift + memcached (Debian), fake-gcs-server and rest-server (Go modules pinned in .ci/emulators/go.mod),
# Azurite (npm). Called by .ci/services.sh; nothing is rebuilt when it is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="$PWD/.cache"
need=()
command -v swift-proxy-server >/dev/null || need+=(swift swift-proxy swift-account swift-container swift-object)
command -v memcached >/dev/null || need+=(memcached)
go_bin=$(command -v go || echo /usr/local/go/bin/go)
[ -x "$go_bin" ] || { echo "emulators.sh: the go command is missing (Go >= 1.26 builds the emulators)" >&2; exit 1; }
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }
fi
mkdir -p "$cache/bin"
build() {  # build <binary> <package>: one Go command from the pinned module graph
  [ -x "$cache/bin/$1" ] && return 0
  (cd .ci/emulators && GOMODCACHE="$cache/gomod" GOCACHE="$cache/gobuild" GOFLAGS="-mod=mod -buildvcs=false" \
    "$go_bin" build -o "$cache/bin/$1" "$2")
}
build fake-gcs-server github.com/fsouza/fake-gcs-server
build rest-server github.com/restic/rest-server/cmd/rest-server
azurite=3.37.0
if [ ! -f "$cache/npm/node_modules/azurite/package.json" ] || \
   ! grep -q "\"version\": \"$azurite\"" "$cache/npm/node_modules/azurite/package.json"; then
  mkdir -p "$cache/npm"
  npm install --silent --no-audit --no-fund --prefix "$cache/npm" "azurite@$azurite" >/dev/null 2>&1
fi
