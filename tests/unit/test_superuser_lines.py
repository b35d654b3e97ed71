"""The filter that makes a pg_dumpall restore fit a live server (pure): the superusers' own `CREATE ROLE` and
`ALTER ROLE ... WITH` lines of the globals are dropped and other `CREATE ROLE` lines tolerate an existing role,
wherever the stream is cut; every other byte passes unchanged, and from the first COPY or \\connect line on
(a database's contents) nothing is changed: a row of COPY data that reads like a role line is data."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from providers.databases.postgres import SuperuserLineFilter

_LINES = (b"CREATE ROLE postgres;\n", b"ALTER ROLE postgres WITH SUPERUSER LOGIN;\n", b"CREATE ROLE alice;\n",
          b"ALTER ROLE alice WITH LOGIN;\n", b'CREATE ROLE "we""ird";\n', b"COPY t (a) FROM stdin;\n",
          b"1\tCREATE ROLE postgres;\n", b"x" * 200 + b"\n", b"\n", b"CREATE ROLE\n", b"ALTER ROLE postgresx WITH x;\n",
          b"SELECT 'ROLE';\n", b"CREATE ROLE bob;\r\n", b"\\connect shop\n", b"COPY\n")
_EXPECTED = {
    b"CREATE ROLE postgres;\n": b"",
    b"ALTER ROLE postgres WITH SUPERUSER LOGIN;\n": b"",
    b"CREATE ROLE alice;\n": b"DO $stashplan$ BEGIN CREATE ROLE alice; EXCEPTION WHEN duplicate_object THEN NULL; "
                             b"END $stashplan$;\n",
    b'CREATE ROLE "we""ird";\n': b'DO $stashplan$ BEGIN CREATE ROLE "we""ird"; EXCEPTION WHEN duplicate_object THEN '
                                 b"NULL; END $stashplan$;\n",
    b"CREATE ROLE bob;\r\n": b"DO $stashplan$ BEGIN CREATE ROLE bob; EXCEPTION WHEN duplicate_object THEN NULL; "
                             b"END $stashplan$;\n",
}


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.sampled_from(_LINES), max_size=25), cuts=st.lists(st.integers(0, 1200), max_size=15),
       last=st.sampled_from((b"", b"CREATE ROLE postgres;", b"CREATE ROLE carol;", b"ALTER RO", b"tail")))
def test_role_lines_are_judged_whole_and_the_rest_passes_wherever_the_stream_is_cut(
        lines: list[bytes], cuts: list[int], last: bytes) -> None:
    stream = b"".join(lines) + last
    f = SuperuserLineFilter(("postgres",))
    out, pos = b"", 0
    for cut in sorted({min(c, len(stream)) for c in cuts} | {len(stream)}):
        out += f.feed(stream[pos:cut])
        pos = cut
    out += f.flush()
    last_out = {b"CREATE ROLE postgres;": b"", b"CREATE ROLE carol;": b"DO $stashplan$ BEGIN CREATE ROLE carol; "
                b"EXCEPTION WHEN duplicate_object THEN NULL; END $stashplan$;\n"}.get(last, last)
    past = next((i for i, line in enumerate(lines) if line.startswith((b"COPY ", b"\\connect "))), len(lines))
    if past < len(lines):
        last_out = last
    assert out == b"".join(_EXPECTED.get(line, line) for line in lines[:past]) + b"".join(lines[past:]) + last_out


def test_a_row_of_copy_data_that_reads_like_a_superusers_role_line_is_restored() -> None:
    """pg_dump's data of a table whose first column holds such text: the rows used to be dropped silently."""
    dump = (b"CREATE TABLE public.notes (body text, n integer);\nCOPY public.notes (body, n) FROM stdin;\n"
            b"CREATE ROLE postgres;\t1\nALTER ROLE postgres WITH x\t2\nCREATE ROLE alice;\t3\n\\.\n")
    f = SuperuserLineFilter(("postgres",))
    assert b"".join(f.feed(dump[i:i + 7]) for i in range(0, len(dump), 7)) + f.flush() == dump
