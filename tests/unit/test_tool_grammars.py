"""Task params are read as each tool reads them: the grammars match the installed tools' `--help`, the five
bypasses of the old `word[:2]` check are refused, and generated command lines that the allow-list accepts
make the tool read no option off the allow-list (checked against Python's own GNU getopt for PostgreSQL,
against the real MariaDB binaries' `--help --verbose` variable table, and transcribed loops for the rest)."""

from __future__ import annotations

import getopt
import re
import shutil
import subprocess
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.databases import check_task_params
from providers.databases.getopt import NONE, OPTIONAL, REQUIRED, Grammar
from providers.databases.grammars import GRAMMARS
from providers.databases.mysql import OPTIONS as MYSQL_OPTIONS
from providers.databases.options import ToolOptions
from providers.databases.postgres import OPTIONS as PG_OPTIONS
from providers.databases.redis import OPTIONS as REDIS_OPTIONS
from providers.databases.sqlite import OPTIONS as SQLITE_OPTIONS
from stashplan.errors import TransferError

ALL: dict[str, ToolOptions] = {**PG_OPTIONS, **MYSQL_OPTIONS, **REDIS_OPTIONS, **SQLITE_OPTIONS}
FUZZ = settings(max_examples=300, deadline=timedelta(seconds=10), database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.mark.parametrize("direction,database,args,option", [
    ("backup", "postgres", "-af/tmp/plain.sql", "option -f (--file) is not allowed for pg_dumpall: it writes output"),
    ("backup", "postgres", "-ap5499", "option -p (--port) is not allowed for pg_dumpall: it changes the connection"),
    ("restore", "postgres", r"'-ac\! id'", "option -c (--command) is not allowed for psql: it runs commands"),
    ("backup", "mysql", "-cr/tmp/plain.sql", "option -r (--result-file) is not allowed for mysqldump: it writes output"),
    ("restore", "mariadb", "-vesystem id", "option -e (--execute) is not allowed for mariadb: it runs commands"),
    ("backup", "postgres", "--fil=/tmp/x", "option --file is not allowed for pg_dumpall: it writes output"),
    ("restore", "mariadb", "--loose-exec=x", "option --execute is not allowed for mariadb: it runs commands"),
    ("restore", "mariadb", "--one_database --ini=x", "option --init-command is not allowed for mariadb"),
    ("restore", "mariadb", "--databa=src", "option --database is not allowed for mariadb: it changes the connection"),
    ("backup", "sqlite", "-bail x.db", "'x.db' is not allowed for sqlite3: only options are"),
    ("restore", "redis", "--tls FLUSHALL", "'FLUSHALL' is not allowed for redis-cli: only options are"),
])
def test_bundles_prefixes_and_operands_are_read_as_the_tool_reads_them(
    direction: str, database: str, args: str, option: str
) -> None:
    with pytest.raises(TransferError) as err:
        check_task_params(direction, database, {"args": args})
    assert str(err.value) == f"task param args: {option}" or str(err.value).startswith(f"task param args: {option}")
    assert "\n" not in str(err.value)


def test_allowed_spellings_still_pass() -> None:
    check_task_params("backup", "postgres", {"args": "-cO --if-exists --no-ow"})
    check_task_params("backup", "mariadb", {"args": "--all-databases --skip-comments --single_transaction -Q"})
    check_task_params("restore", "mariadb", {"args": "-o --binary-mode"})
    check_task_params("restore", "postgres", {"args": "-aq --echo-err"})


# --- the grammars against the tools' own --help -----------------------------------------------------------

_HELP_LINE = re.compile(r"^ {1,3}(?:-(\S)(?: \(\"one\"\))?, )?--([a-z0-9][a-z0-9_-]*)(\[=|=)?")


def _help(tool: str) -> str:
    argv = [tool, "--no-defaults", "--help"] if "maria" in tool else [tool, "--help"]
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


@pytest.mark.parametrize("tool", ["pg_dump", "pg_dumpall", "psql", "mariadb-dump", "mariadb"])
def test_every_option_the_tool_lists_is_in_its_grammar_with_its_argument(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed (.ci/services.sh installs it)")
    grammar = GRAMMARS[tool]
    listed = 0
    for line in _help(tool).splitlines():
        m = _HELP_LINE.match(line)
        if not m or m.group(2) in ("help", "set"):  # psql: --help[=topic] and `--set=, --variable=`
            continue
        letter, name, eq = m.groups()
        want = OPTIONAL if eq == "[=" else REQUIRED if eq else NONE
        opt = grammar.long.get(name)
        assert opt is not None, f"{tool} --{name} is missing from the grammar"
        if grammar.style == "gnu" or want != NONE:  # my_getopt booleans also take `=value`
            assert opt.arg == want, f"{tool} --{name}: argument {opt.arg}, the tool says {want}"
        if letter:
            assert grammar.short.get(letter) is opt, f"{tool} -{letter} is not --{name} in the grammar"
        listed += 1
    assert listed > 20


# --- generated command lines --------------------------------------------------------------------------------

VALUES = ["/tmp/h2-x", "5499", "-f/tmp/x", "--file=/tmp/x", "-e", "x", "db", "--help"]


def _names(names: list[str], good: list[str]) -> st.SearchStrategy[str]:
    """Mostly allowed names (so that many lines pass the allow-list), sometimes any name."""
    return st.one_of(st.sampled_from(good), st.sampled_from(good), st.sampled_from(names)) if good else \
        st.sampled_from(names)


def _pieces(options: ToolOptions) -> st.SearchStrategy[list[str]]:
    grammar = options.grammar
    longs = _names(sorted(grammar.long), sorted(n for n, o in grammar.long.items() if o.name in options.allowed))
    shorts = _names(sorted(grammar.short), sorted(c for c, o in grammar.short.items() if o.name in options.allowed))
    value = st.sampled_from(VALUES)
    word: st.SearchStrategy[str]
    if grammar.style in ("exact", "sqlite"):
        word = st.one_of(longs, longs, value, longs.map(lambda n: n + "=x"), longs.map(lambda n: "-" + n))
    else:
        prefix = longs.flatmap(lambda n: st.integers(1, len(n)).map(lambda k: n[:k]))
        special = st.sampled_from(["", "", "", "skip-", "loose-", "enable-"] if grammar.style == "mysql" else [""])
        long_word = st.tuples(special, st.one_of(longs, prefix), st.one_of(st.just(""), value.map(lambda v: "=" + v)))
        bundle = st.tuples(st.lists(shorts, min_size=1, max_size=4), st.one_of(st.just(""), value))
        word = st.one_of(long_word.map(lambda t: "--" + "".join(t)), bundle.map(lambda t: "-" + "".join(t[0]) + t[1]),
                         value, st.just("--"))
    return st.lists(word, min_size=1, max_size=5)


def _allowed_reading(options: ToolOptions, words: list[str]) -> bool:
    try:
        options.check(words)
    except TransferError:
        return False
    return True


def _gnu_oracle(grammar: Grammar, words: list[str]) -> list[str] | None:
    """The option names Python's own GNU getopt reads (None where it refuses the words)."""
    shorts = "".join(c + (":" if o.arg == REQUIRED else "") for c, o in grammar.short.items())
    longs = [n + ("=" if o.arg == REQUIRED else "") for n, o in grammar.long.items() if o.arg != OPTIONAL]
    try:
        opts, _ = getopt.gnu_getopt(words, shorts, longs)
    except getopt.GetoptError:
        return None
    return [grammar.long[o[2:]].name if o.startswith("--") else grammar.short[o[1:]].name for o, _ in opts]


@pytest.mark.parametrize("tool", ["pg_dump", "pg_dumpall", "psql"])
def test_generated_getopt_lines_the_allow_list_accepts_read_only_allowed_options(tool: str) -> None:
    options = ALL[tool]

    @FUZZ
    @given(_pieces(options))
    def check(words: list[str]) -> None:
        if not _allowed_reading(options, words):
            return
        read = _gnu_oracle(options.grammar, words)
        if read is None:
            return  # the tool would refuse the line and run nothing
        assert set(read) <= options.allowed, (words, read)
        assert read == [p.opt.name for p in options.parse(words) if p.opt], words

    check()


# my_getopt: the real binaries parse the line up to a trailing --help and print what they read.
_WATCHED = ("host", "port", "socket", "user", "database", "init-command", "plugin-dir", "default-auth", "local-infile",
            "character-sets-dir", "named-commands", "force", "tab", "log-error", "ssl-ca", "ssl-cert", "ssl-key",
            "debug-info", "delete-master-logs", "dump-slave", "master-data", "flush-logs", "compatible")


def _variables(tool: str, words: list[str]) -> dict[str, str] | None:
    done = subprocess.run([tool, "--no-defaults", *words, "--help", "--verbose"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=10, check=False)
    if done.returncode != 0:
        return None
    table = done.stdout.partition("-------------------------------")[2]
    return {k: v for k, _, v in (line.partition(" ") for line in table.splitlines()) if k in _WATCHED}


@pytest.mark.parametrize("tool", ["mariadb", "mariadb-dump"])
def test_generated_my_getopt_lines_the_allow_list_accepts_set_nothing_watched_in_the_real_tool(tool: str) -> None:
    options = ALL[tool]
    baseline = _variables(tool, [])
    assert baseline and "host" in baseline

    @settings(FUZZ, max_examples=150)
    @given(_pieces(options))
    def check(words: list[str]) -> None:
        if "--" in words or not _allowed_reading(options, words):
            return
        seen = _variables(tool, words)
        assert seen is None or seen == baseline, (words, {k: v for k, v in (seen or {}).items()
                                                         if baseline.get(k) != v})

    check()


def _exact_oracle(grammar: Grammar, words: list[str]) -> list[str] | None:
    """redis-cli's and sqlite3's loops: whole words, `--x` is `-x` for sqlite3, arguments are the next words."""
    names, i = [], 0
    while i < len(words):
        w = words[i]
        if not w.startswith("-"):
            return names
        key = w[1:] if grammar.style == "sqlite" and w.startswith("--") else w
        if key not in grammar.long:
            return None
        opt = grammar.long[key]
        names.append(opt.name)
        i += 1 + (len(words) if opt.arg < 0 else opt.arg)
    return names


@pytest.mark.parametrize("tool", ["redis-cli", "sqlite3"])
def test_generated_exact_word_lines_the_allow_list_accepts_read_only_allowed_options(tool: str) -> None:
    options = ALL[tool]

    @FUZZ
    @given(_pieces(options))
    def check(words: list[str]) -> None:
        if _allowed_reading(options, words):
            read = _exact_oracle(options.grammar, words)
            assert read is not None and set(read) <= options.allowed, (words, read)

    check()
