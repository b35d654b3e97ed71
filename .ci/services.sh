#!/usr/bin/env bash
# Install the Debian packages the tests and benchmarks need and start the database services if stopped.
set -euo pipefail
install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "$@" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; }
}
if [ "${1:-}" = "--only" ]; then  # e.g. `--only sqlite3` for make demo: one package, no services
  shift; install "$@"; exit 0
fi
need=()
command -v restic >/dev/null || need+=(restic)
command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
command -v promtool >/dev/null || need+=(prometheus)  # the server and promtool: alert rules and dashboard queries
command -v rsvg-convert >/dev/null || need+=(librsvg2-bin)  # the README screenshot of `stashplan status`: SVG -> PNG
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v pg_dump >/dev/null || need+=(postgresql postgresql-client)
command -v mariadb-dump >/dev/null || need+=(mariadb-server mariadb-client)
command -v redis-server >/dev/null || need+=(redis-server)
command -v faketime >/dev/null || need+=(faketime)  # skews one process's clock: lock staleness tests
command -v pgbackrest >/dev/null || need+=(pgbackrest)  # the physical backup/restore peer of bench_time_to_usable
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)  # the PostgreSQL 17 root filesystem below, and make image
command -v runc >/dev/null || need+=(runc)  # runs the stashplan image in tests (crun refuses hybrid cgroup layouts)
command -v umoci >/dev/null || need+=(umoci)  # make image builds the image with it; tests unpack it for runc
if [ ${#need[@]} -gt 0 ]; then
  install "${need[@]}"
fi
# A newer restic than Debian's, built once from its Go module into .cache/ (tests read repositories of both).
restic_newer=0.18.1
cache_dir="$(cd "$(dirname "$0")/.." && pwd)/.cache/restic-$restic_newer"
go_bin=$(command -v go || echo /usr/local/go/bin/go)
if [ ! -x "$cache_dir/restic" ] && [ -x "$go_bin" ]; then
  GOBIN="$cache_dir" GOFLAGS=-mod=mod "$go_bin" install "github.com/restic/restic/cmd/restic@v$restic_newer" \
    || echo "warning: building restic $restic_newer failed; its tests are skipped" >&2
fi
# PostgreSQL 17 (server and client) in a trixie root filesystem, built once into .cache/pgrootfs/ (about 80 s):
# the version matrix tests run it beside this machine's 15 (tests/fixtures/pg_matrix.py).
bash "$(dirname "$0")/pg-rootfs.sh" >/dev/null \
  || echo "warning: building the PostgreSQL 17 root filesystem failed; the version matrix tests are skipped" >&2
bash "$(dirname "$0")/emulators.sh"  # storage emulators (Swift, fake-gcs-server, rest-server, Azurite) into .cache/
# Start services that are not answering, and let the test roles log in over loopback TCP:
# PostgreSQL's postgres role by trust on 127.0.0.1/::1, MariaDB's root with an empty password.
pgver=$(ls /etc/postgresql | sort -V | tail -1)
hba=/etc/postgresql/$pgver/main/pg_hba.conf
if ! grep -q '^# stashplan-tests' "$hba"; then
  { echo '# stashplan-tests: loopback trust for the throwaway test databases'
    echo 'host all all 127.0.0.1/32 trust'
    echo 'host all all ::1/128 trust'
    cat "$hba"; } > "$hba.new" && mv "$hba.new" "$hba"
  chown postgres:postgres "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$pgver" main reload 2>/dev/null || true
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$pgver" main start || true
fi
if ! mariadb -h 127.0.0.1 -uroot -e 'select 1' >/dev/null 2>&1; then
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  if ! mariadb -uroot -e 'select 1' >/dev/null 2>&1; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql || true
    for i in $(seq 1 30); do mariadb -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 1; done
  fi
  mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
    CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;" || true
fi
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no \
    --logfile /tmp/redis-stashplan.log >/dev/null || true
fi
for i in $(seq 1 30); do
  pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null \
    && mariadb -h 127.0.0.1 -uroot -e 'select 1' >/dev/null 2>&1 \
    && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "warning: a database service did not answer within 30 s" >&2
