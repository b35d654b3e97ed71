"""The option grammars of the tools the providers run, as their own parsers define them: PostgreSQL 15's
pg_dump, pg_dumpall and psql (getopt_long), MariaDB 10.11's dump tool and client (my_getopt, with the MySQL 8
names that tool set adds), redis-cli 7 and sqlite3 3.40. `tests/unit/test_tool_grammars.py` checks them
against each installed tool's `--help`.
"""

from __future__ import annotations

from providers.databases.getopt import Grammar, exact, gnu, mysql

_PG_DUMP_LONG = """
data-only=a blobs=b no-blobs=B clean=c create=C dbname=d extension=e file=f format=F host=h jobs=j
no-reconnect=R schema=n exclude-schema=N no-owner=O port=p schema-only=s superuser=S table=t exclude-table=T
no-password=w password=W username=U verbose=v no-privileges=x no-acl=x compress=Z encoding=E help=? version=V
attribute-inserts binary-upgrade column-inserts disable-dollar-quoting disable-triggers enable-row-security
exclude-table-data: extra-float-digits: if-exists inserts lock-wait-timeout: no-table-access-method
no-tablespaces quote-all-identifiers load-via-partition-root role: section: serializable-deferrable snapshot:
strict-names use-set-session-authorization no-comments no-publications no-security-labels no-subscriptions
no-synchronized-snapshots no-toast-compression no-unlogged-table-data no-sync on-conflict-do-nothing
rows-per-insert: include-foreign-data: restrict-key:
"""
PG_DUMP = gnu("pg_dump", "abBcCd:e:E:f:F:h:j:n:N:Op:RsS:t:T:U:vwWxZ:V?", _PG_DUMP_LONG)

_PG_DUMPALL_LONG = """
data-only=a clean=c encoding=E file=f globals-only=g host=h dbname=d database=l no-owner=O port=p roles-only=r
schema-only=s superuser=S tablespaces-only=t username=U verbose=v no-password=w password=W no-privileges=x
no-acl=x help=? version=V attribute-inserts binary-upgrade column-inserts disable-dollar-quoting
disable-triggers exclude-database: extra-float-digits: if-exists inserts lock-wait-timeout:
no-table-access-method no-tablespaces quote-all-identifiers load-via-partition-root role:
use-set-session-authorization no-comments no-publications no-role-passwords no-security-labels
no-subscriptions no-sync no-toast-compression no-unlogged-table-data on-conflict-do-nothing rows-per-insert:
restrict-key:
"""
PG_DUMPALL = gnu("pg_dumpall", "acd:E:f:gh:l:Op:rsS:tU:vwWxV?", _PG_DUMPALL_LONG)

_PSQL_LONG = """
echo-all=a no-align=A command=c dbname=d echo-queries=e echo-errors=b echo-hidden=E file=f field-separator=F
field-separator-zero=z host=h html=H list=l log-file=L no-readline=n single-transaction=1 output=o port=p
pset=P quiet=q record-separator=R record-separator-zero=0 single-step=s single-line=S tuples-only=t
table-attr=T username=U set=v variable=v version=V no-password=w password=W expanded=x no-psqlrc=X help::
csv
"""
PSQL = gnu("psql", "aAbc:d:eEf:F:h:HlL:no:p:P:qR:sStT:U:v:VwWxXz?01", _PSQL_LONG)

# my_getopt items `name:short:kind` (N no argument, R required, O optional), from `--no-defaults --help`,
# plus the option-file switches load_defaults reads and the MySQL 8 client names (refused or allowed alike).
_MY_COMMON = """
help:?:N debug:#:O debug-check::N debug-info::N character-sets-dir::R compress:C:N default-auth::R
default-character-set::R host:h:R max-allowed-packet::R net-buffer-length::R password:p:O plugin-dir::R
port:P:R protocol::R socket:S:R ssl::N ssl-ca::R ssl-capath::R ssl-cert::R ssl-cipher::R ssl-key::R ssl-crl::R
ssl-crlpath::R tls-version::R ssl-verify-server-cert::N user:u:R verbose:v:N version:V:N force:f:N xml:X:N
no-defaults::N defaults-file::R defaults-extra-file::R defaults-group-suffix::R print-defaults::N
login-path::R ssl-mode::R server-public-key-path::R get-server-public-key::N compression-algorithms::R
zstd-compression-level::R load-data-local-dir::R
"""
_MY_DUMP = _MY_COMMON + """
all-databases:A:N all-tablespaces:Y:N no-tablespaces:y:N add-drop-database::N add-drop-table::N
add-drop-trigger::N add-locks::N allow-keywords::N apply-slave-statements::N as-of::R comments:i:N
compatible::R compact::N complete-insert:c:N copy-s3-tables::N create-options:a:N databases:B:N
delayed-insert::N delete-master-logs::N disable-keys:K:N dump-date::N dump-history:H:N dump-slave::O events:E:N
extended-insert:e:N fields-terminated-by::R fields-enclosed-by::R fields-optionally-enclosed-by::R
fields-escaped-by::R flush-logs:F:N flush-privileges::N gtid::N header::N hex-blob::N ignore-database::R
ignore-table-data::R ignore-table::R include-master-host-port::N insert-ignore::N lines-terminated-by::R
lock-all-tables:x:N lock-tables:l:N log-error::R log-queries::N master-data::O max-statement-time::R
no-autocommit::N no-create-db:n:N no-create-info:t:N no-data:d:N no-data-med::N no-set-names:N:N opt::N
order-by-primary::N order-by-size::N quick:q:N quote-names:Q:N replace::N result-file:r:R routines:R:N
set-charset::N single-transaction::N skip-opt::N system::R tab:T:R tables::N triggers::N tz-utc::N where:w:R
galera-info::N column-statistics::N set-gtid-purged::R
"""
_MY_CLIENT = _MY_COMMON + """
help:I:N abort-source-on-error::N auto-rehash::N no-auto-rehash:A:N auto-vertical-output::N batch:B:N
binary-as-hex::N binary-mode::N column-names::N skip-column-names:N:N column-type-info::N comments:c:N
connect-expired-password::N connect-timeout::R database:D:R debug-info:T:N delimiter::R
enable-cleartext-plugin::N execute:e:R html:H:N ignore-spaces:i:N init-command::R line-numbers::N
skip-line-numbers:L:N local-infile::N max-join-size::R named-commands:G:N no-beep:b:N one-database:o:N pager::O
print-query-on-error::N progress-reports::N prompt::R quick:q:N quick-max-column-width::R raw:r:N reconnect::N
safe-updates:U:N i-am-a-dummy:U:N sandbox::N secure-auth::N select-limit::R server-arg::R show-warnings::N
sigint-ignore::N silent:s:N table:t:N tee::R unbuffered:n:N vertical:E:N wait:w:N system-command::N
"""
MYSQLDUMP = mysql("mysqldump", _MY_DUMP)
MARIADB_DUMP = mysql("mariadb-dump", _MY_DUMP)
MYSQL_CLIENT = mysql("mysql", _MY_CLIENT)
MARIADB_CLIENT = mysql("mariadb", _MY_CLIENT)

REDIS_CLI = exact("redis-cli", """-h:1 -p:1 -s:1 -a:1 --user:1 --pass:1 --askpass -u:1 -r:1 -i:1 -n:1 -2 -3 -x -X:1
-d:1 -D:1 -c -e --tls --sni:1 --cacert:1 --cacertdir:1 --insecure --cert:1 --key:1 --tls-ciphers:1
--tls-ciphersuites:1 --raw --no-raw --quoted-input --csv --json --quoted-json --show-pushes:1 --stat --latency
--latency-history --latency-dist --lru-test:1 --replica --slave --rdb:1 --functions-rdb:1 --pipe --pipe-timeout:1
--bigkeys --memkeys --memkeys-samples:1 --hotkeys --scan --pattern:1 --quoted-pattern:1 --count:1
--intrinsic-latency:1 --eval:1 --ldb --ldb-sync-mode --cluster:* --verbose --no-auth-warning --help
--version -v""")

SQLITE3 = exact("sqlite3", """-A:* -append -ascii -bail -batch -box -column -cmd:1 -csv -deserialize -echo -init:1
-header -noheader -help -html -interactive -json -line -list -lookaside:2 -markdown -maxsize:1 -memtrace -mmap:1
-newline:1 -nofollow -nonce:1 -nullvalue:1 -pagecache:2 -quote -readonly -safe -separator:1 -stats -table -tabs
-version -vfs:1 -zip -heap:1 -threadsafe:1 -sorterref:1 -vfstrace -multiplex -unsafe-testing -archive:*
-utf8 -utf16""", sqlite=True)

GRAMMARS: dict[str, Grammar] = {g.tool: g for g in (PG_DUMP, PG_DUMPALL, PSQL, MYSQLDUMP, MARIADB_DUMP,
                                                     MYSQL_CLIENT, MARIADB_CLIENT, REDIS_CLI, SQLITE3)}
