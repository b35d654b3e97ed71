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
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v pg_dump >/dev/null || need+=(postgresql postgresql-client)
command -v mariadb-dump >/dev/null || need+=(mariadb-server mariadb-client)
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  install "${need[@]}"
fi
# Start services that are not answering.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! mariadb -h 127.0.0.1 -uroot -e 'select 1' >/dev/null 2>&1; then
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
for i in $(seq 1 30); do
  pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null \
    && mariadb -h 127.0.0.1 -uroot -e 'select 1' >/dev/null 2>&1 \
    && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "warning: a database service did not answer within 30 s" >&2
