#!/usr/bin/env bash
# Build etcd, kube-apiserver and kube-controller-manager from tests/kube/go.mod, once per machine.
# Binaries go to .cache/kube/<k8s version>-<hash of go.mod+go.sum>/bin; prints that directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
command -v go >/dev/null || { echo "kube-env: no Go toolchain on PATH" >&2; exit 1; }
version="$(awk '$1 == "k8s.io/kubernetes" {print $2}' "$here/go.mod")"
key="$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-12)"
out="$root/.cache/kube/$version-$key"
if [ -x "$out/bin/kube-apiserver" ] && [ -x "$out/bin/kube-controller-manager" ] && [ -x "$out/bin/etcd" ]; then
    echo "$out/bin"
    exit 0
fi
major="${version#v}"; major="${major%%.*}"
minor="${version#v*.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
rm -rf "$out/tmp" && mkdir -p "$out/tmp"
start=$(date +%s)
echo "kube-env: building kubernetes $version control plane into $out (long the first time)" >&2
(cd "$here" && nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$out/tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager go.etcd.io/etcd/server/v3)
for name in server v3; do
    [ -e "$out/tmp/$name" ] && mv "$out/tmp/$name" "$out/tmp/etcd"
done
rm -rf "$out/bin" && mv "$out/tmp" "$out/bin"
echo "kube-env: built in $(( $(date +%s) - start )) s" >&2
echo "$out/bin"
