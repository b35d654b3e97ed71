"""The process pipe: dump processes read as streams, restore clients written as streams (real processes)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from providers.databases.base import ProcessSpec
from providers.databases.postgres import SuperuserLineFilter
from stashplan.errors import TransferError
from stashplan.transfer.pipe import ProcessReader, ProcessWriter


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def sh(script: str, **env: str) -> ProcessSpec:
    return ProcessSpec(("sh", "-c", script), env, label="dump")


def test_reader_streams_all_output_of_a_successful_process() -> None:
    with ProcessReader(sh("seq 1 100000")) as reader:
        data = reader.read()
    assert data == b"".join(b"%d\n" % i for i in range(1, 100001))


def test_reader_raises_at_eof_with_stderr_tail_when_process_fails() -> None:
    reader = ProcessReader(sh("echo partial; echo 'FATAL: relation is locked' >&2; exit 4"))
    got = reader.read(8)
    with pytest.raises(TransferError, match=r"dump exited with code 4: FATAL: relation is locked"):
        while got:
            got = reader.read(8)
    reader.close()


def test_reader_close_before_eof_kills_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    reader = ProcessReader(sh(f"sleep 30 & echo $! > {pidfile}; yes"))
    assert reader.read(10)
    while not pidfile.exists() or not pidfile.read_text().strip():
        time.sleep(0.01)
    reader.close()
    child = int(pidfile.read_text())
    for _ in range(100):
        if not alive(child):
            break
        time.sleep(0.02)
    else:
        pytest.fail("background child of the dump survived close()")


def test_reader_kills_process_at_deadline_and_reports_it() -> None:
    start = time.monotonic()
    reader = ProcessReader(sh("echo start; sleep 30"), deadline=time.monotonic() + 0.5)
    with pytest.raises(TransferError, match="deadline exceeded: dump was killed"):
        reader.read()
    reader.close()
    assert time.monotonic() - start < 10


def test_reader_passes_env_without_putting_it_on_the_command_line() -> None:
    with ProcessReader(sh('printf %s "$SECRET_VALUE"', SECRET_VALUE="s3cr3t")) as reader:
        assert reader.read() == b"s3cr3t"


def test_reader_reports_missing_binary_in_one_line() -> None:
    with pytest.raises(TransferError, match="cannot run no-such-dump"):
        ProcessReader(ProcessSpec(("no-such-dump",)))


def test_writer_feeds_stdin_and_checks_exit_code(tmp_path: Path) -> None:
    out = tmp_path / "out"
    writer = ProcessWriter(ProcessSpec(("sh", "-c", f"cat > {out}"), label="restore"))
    for i in range(1000):
        writer.write(b"line %d\n" % i)
    writer.finish()
    writer.close()
    assert out.read_bytes() == b"".join(b"line %d\n" % i for i in range(1000))


def test_writer_raises_with_client_output_when_client_dies_early() -> None:
    writer = ProcessWriter(ProcessSpec(("sh", "-c", "echo 'ERROR: syntax error' >&2; exit 3"), label="psql"))
    with pytest.raises(TransferError, match="psql exited with code 3: ERROR: syntax error"):
        for _ in range(10000):
            writer.write(b"x" * 65536)
        writer.finish()
    writer.close()


def test_writer_finish_raises_when_client_exits_non_zero_after_reading_everything() -> None:
    writer = ProcessWriter(
        ProcessSpec(("sh", "-c", "cat >/dev/null; echo 'bad input' >&2; exit 1"), label="mysql")
    )
    writer.write(b"hello\n")
    with pytest.raises(TransferError, match="mysql exited with code 1: bad input"):
        writer.finish()
    writer.close()


def test_writer_deadline_kills_a_client_that_stops_reading() -> None:
    writer = ProcessWriter(ProcessSpec(("sleep", "30")), deadline=time.monotonic() + 0.5)
    with pytest.raises(TransferError, match="deadline exceeded: sleep was killed"):
        for _ in range(10000):
            writer.write(b"x" * 65536)
        writer.finish()
    writer.close()


def test_writer_applies_stream_filter_across_chunk_boundaries(tmp_path: Path) -> None:
    out = tmp_path / "out.sql"
    dump = (
        b"CREATE ROLE postgres;\nALTER ROLE postgres WITH SUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$x';\n"
        b"CREATE ROLE app;\nALTER ROLE app WITH LOGIN PASSWORD 'y';\nCREATE TABLE t (a int);\n"
    )
    writer = ProcessWriter(
        ProcessSpec(("sh", "-c", f"cat > {out}")), stream_filter=SuperuserLineFilter(("postgres",))
    )
    for i in range(0, len(dump), 7):
        writer.write(dump[i : i + 7])
    writer.finish()
    writer.close()
    assert out.read_bytes() == (
        b"DO $stashplan$ BEGIN CREATE ROLE app; EXCEPTION WHEN duplicate_object THEN NULL; END $stashplan$;\n"
        b"ALTER ROLE app WITH LOGIN PASSWORD 'y';\nCREATE TABLE t (a int);\n"
    )


def test_error_tail_starts_at_the_first_line_naming_the_error() -> None:
    script = (
        "echo 'progress 1' >&2; echo 'progress 2' >&2; echo 'progress 3' >&2; "
        "echo 'pg_dump: error: Dumping the contents of table \"big\" failed' >&2; "
        "echo 'pg_dump: detail: server closed the connection unexpectedly' >&2; "
        "echo '  This probably means the server terminated abnormally' >&2; "
        "echo '  before or while processing the request.' >&2; "
        "echo 'pg_dump: detail: Command was: COPY public.big TO stdout;' >&2; exit 1"
    )
    reader = ProcessReader(sh(script))
    with pytest.raises(TransferError) as info:
        reader.read()
    reader.close()
    message = str(info.value)
    assert message.startswith('dump exited with code 1: pg_dump: error: Dumping the contents of table "big"')
    assert "server closed the connection unexpectedly" in message and "progress" not in message
    assert "\n" not in message
