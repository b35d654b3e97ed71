"""psql's restricted mode around a restore stream (pure): ordinary lines pass byte for byte wherever the stream is
cut, the dump's own `\\restrict` pair is dropped, a `\\connect` is let through only for a whole-server restore,
and any other meta-command is refused in one line."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.databases.confine import MAX_LINE, PsqlConfine
from stashplan.errors import TransferError

_LINES = (b"SELECT 1;\n", b"1\t\\N\tx\\\\y\n", b"\\N\t2\n", b"\\.\n", b"\\restrict AbC\n", b"\\unrestrict AbC\n",
          b"\\connect shop\n", b"a\\\n", b"\n", b"x" * 300 + b"\n", b"COPY t (a) FROM stdin;\n")


def _cut(f: PsqlConfine, stream: bytes, cuts: list[int]) -> bytes:
    out, pos = b"", 0
    for cut in sorted({min(c, len(stream)) for c in cuts} | {len(stream)}):
        out += f.feed(stream[pos:cut])
        pos = cut
    return out + f.flush()


def _expected(lines: list[bytes], key: bytes) -> bytes:
    out = b"\\restrict " + key + b"\n"
    for line in lines:
        if line.startswith((b"\\restrict", b"\\unrestrict")):
            continue
        if line.startswith(b"\\connect"):
            line = b"\\unrestrict " + key + b"\n" + line + b"\\restrict " + key + b"\n"
        out += line
    return out


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.sampled_from(_LINES), max_size=20), cuts=st.lists(st.integers(0, 800), max_size=15),
       last=st.sampled_from((b"", b"SELECT 2;", b"\\N")))
def test_lines_pass_unchanged_and_meta_commands_are_judged_whole_wherever_the_stream_is_cut(
        lines: list[bytes], cuts: list[int], last: bytes) -> None:
    f = PsqlConfine("")
    out = _cut(f, b"".join(lines) + last, cuts)
    key = re.match(rb"\\restrict (\w+)\n", out)
    assert key is not None
    assert out == _expected([*lines, last], key.group(1))


@pytest.mark.parametrize("cut", (1, 3, 4096))
def test_a_meta_command_is_refused_wherever_it_falls(cut: int) -> None:
    stream = b"SELECT 1;\n" + b"x" * 5000 + b"\n\\! rm -rf /\n"
    with pytest.raises(TransferError, match=r"meta-command \\!"):
        _cut(PsqlConfine("shop"), stream, list(range(0, len(stream), cut)))
    with pytest.raises(TransferError, match=r"switches database \(\\connect other\)"):
        _cut(PsqlConfine("shop"), b"SELECT 1;\n\\connect other\n", list(range(0, 30, cut)))


def test_a_meta_command_line_longer_than_the_limit_is_refused_but_a_long_ordinary_line_passes() -> None:
    long_row = b"y" * (MAX_LINE + 10) + b"\n"
    assert _cut(PsqlConfine(""), long_row, [5, MAX_LINE // 2, MAX_LINE + 3]).endswith(long_row)
    with pytest.raises(TransferError, match="meta-command line longer"):
        _cut(PsqlConfine(""), b"\\echo " + b"y" * (MAX_LINE + 10) + b"\n", [7, MAX_LINE + 3])
