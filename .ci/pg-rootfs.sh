#!/usr/bin/env bash
# A Debian root filesystem with PostgreSQL 17 (server and client), made once with mmdebstrap (mode unshare) into
# .cache/pgrootfs/<suite>-postgresql-17/ and kept: the version matrix tests (tests/fixtures/pg_matrix.py) run a
# private PostgreSQL 17 server and its clients from it, beside this machine's PostgreSQL 15. Idempotent (one
# build at a time); prints the directory. Needs mmdebstrap, user namespaces and the Debian mirror; about 80 s and
# 520 MB once.
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE=${PG_ROOTFS_SUITE:-trixie}
PG=17
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=.cache/pgrootfs
out="$cache/$SUITE-postgresql-$PG"
ready() { [ -x "$out/usr/lib/postgresql/$PG/bin/postgres" ] && [ -x "$out/usr/lib/postgresql/$PG/bin/pg_dump" ]; }
if ready; then echo "$out"; exit 0; fi
command -v mmdebstrap >/dev/null || { echo "pg-rootfs: mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 1; }
mkdir -p "$cache"
exec 9>"$cache/$SUITE.lock"
flock 9  # another session may be building it
if ready; then echo "$out"; exit 0; fi
started=$(date +%s)
work=$(mktemp -d "$cache/$SUITE.build.XXXXXX")
# A failed build leaves files owned by subordinate ids when not run as root: removed inside a user namespace.
trap 'rm -rf "$work" 2>/dev/null || unshare --map-auto --map-root-user rm -rf "$work" || true' EXIT
mmdebstrap --quiet --mode=unshare --variant=apt --include="postgresql-$PG" \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  "$SUITE" "$work/rootfs" "deb $MIRROR $SUITE main" >&2
mv "$work/rootfs" "$out"
echo "pg-rootfs: $out ($SUITE, postgresql-$PG) built in $(( $(date +%s) - started )) s" >&2
echo "$out"
