"""A newer pg_dump's settings on the restore stream (rewritten outside COPY data only, however the stream is
cut) and pg_dump's refusal of a newer server said in one line."""

from __future__ import annotations

import random

import pytest

from providers.databases.pg_versions import NewerSettingsFilter, version_mismatch

GUARDED = (b"SELECT pg_catalog.set_config('transaction_timeout', '0', false) WHERE "
           b"pg_catalog.current_setting('server_version_num')::integer >= 170000;\n")
DUMP = (b"SET statement_timeout = 0;\nSET transaction_timeout = 0;\nSET client_encoding = 'UTF8';\n"
        b"CREATE TABLE public.notes (body text);\n"
        b"COPY public.notes (body) FROM stdin;\nSET transaction_timeout = 0;\nends with a backslash-dot \\\\.\n\\.\n"
        b"\\connect other\nSET transaction_timeout = 0;\nCOPY public.more (body) FROM stdin;\n"
        b"SET transaction_timeout = 0;\n\\.\nSELECT 1;")
EXPECTED = DUMP.replace(b"SET statement_timeout = 0;\nSET transaction_timeout = 0;\n",
                        b"SET statement_timeout = 0;\n" + GUARDED).replace(
                        b"\\connect other\nSET transaction_timeout = 0;\n", b"\\connect other\n" + GUARDED)


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 64, len(DUMP)])
def test_settings_are_guarded_outside_copy_data_whatever_the_pieces(piece: int) -> None:
    f = NewerSettingsFilter()
    out = b"".join(f.feed(DUMP[i:i + piece]) for i in range(0, len(DUMP), piece)) + f.flush()
    assert out == EXPECTED
    assert out.count(b"SET transaction_timeout = 0;\n") == 2  # the two rows of COPY data, untouched


def test_a_dump_without_those_settings_passes_unchanged() -> None:
    dump = b"SET statement_timeout = 0;\nCOPY t (a) FROM stdin;\n1\n\\.\nCREATE INDEX i ON t USING btree (a);\n"
    f = NewerSettingsFilter()
    assert f.feed(dump) + f.flush() == dump


def test_pg_dumps_refusal_of_a_newer_server_is_one_line_naming_both_versions() -> None:
    tail = ("pg_dump: error: aborting because of server version mismatch | pg_dump: detail: server version: "
            "17.12 (Debian 17.12-0+deb13u1); pg_dump version: 15.18 (Debian 15.18-0+deb12u1)")
    assert version_mismatch(tail) == (
        "pg_dump 15.18 cannot dump PostgreSQL 17.12: pg_dump dumps servers up to its own major version (15); "
        "run a pg_dump of 17 or newer (the stashplan image carries 17)")
    assert version_mismatch(tail.replace("pg_dump", "pg_dumpall")).startswith("pg_dumpall 15.18 cannot dump")
    assert version_mismatch("pg_dump: error: connection to server failed: FATAL: password authentication") is None


def test_copy_rows_passed_whole_keep_the_end_of_the_block_wherever_the_cuts_fall() -> None:
    rows = b"".join(b"\\N\t%d\\\\.\\n\n" % i if i % 3 else b"%d\tSET transaction_timeout = 0;\n" % i
                    for i in range(300))
    dump = DUMP.replace(b"ends with a backslash-dot \\\\.\n", rows)
    expected = EXPECTED.replace(b"ends with a backslash-dot \\\\.\n", rows)
    rng = random.Random(26)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(dump)), rng.randint(1, 40)))
        f = NewerSettingsFilter()
        out = b"".join(f.feed(dump[a:b]) for a, b in zip([0, *cuts], [*cuts, len(dump)], strict=True)) + f.flush()
        assert out == expected
