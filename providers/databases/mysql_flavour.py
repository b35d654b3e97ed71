"""Which MySQL-family client will run (Oracle MySQL's or MariaDB's, read from `<tool> --version` on PATH; Debian and
the stashplan image ship MariaDB's, `mysqldump` being a link to `mariadb-dump`), and the options in task `args` that
only Oracle MySQL's clients know, adapted to MariaDB's: translated where MariaDB's client already behaves as the
option asks (`--set-gtid-purged=OFF`, KubeDB's default; column statistics off), refused otherwise, naming the option
and the client. Checked at plan time and again in the Job.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from providers.databases.getopt import Parsed
from providers.databases.options import ToolOptions, rebuild
from stashplan.errors import TransferError

_ORACLE_ONLY = {  # option -> what MariaDB's client lacks (my_getopt names both tools' grammars know)
    "--set-gtid-purged": "MariaDB's dump writes no GTID_PURGED; its --gtid records MariaDB GTIDs instead",
    "--column-statistics": "MariaDB's dump writes no MySQL 8 histograms",
    "--ssl-mode": "MariaDB's client verifies the server with --ssl-ca, which the AppBinding's caBundle sets",
    "--server-public-key-path": "it is for MySQL 8's caching_sha2_password authentication",
    "--get-server-public-key": "it is for MySQL 8's caching_sha2_password authentication",
    "--compression-algorithms": "MariaDB's client compresses with --compress",
    "--zstd-compression-level": "MariaDB's client compresses with --compress",
    "--login-path": "MariaDB's client has no .mylogin.cnf",
    "--load-data-local-dir": "MariaDB's client has no such directory limit",
}
_OFF = {"0", "off", "false"}


@dataclass(frozen=True)
class Client:
    """The client a tool name runs: `maria` when it is MariaDB's; `label` names it for messages."""

    maria: bool
    label: str


@cache
def client(tool: str) -> Client:
    """The client `tool` runs here. Not installed: MariaDB's, the one the stashplan image's Jobs run."""
    found = shutil.which(tool)
    if found is None:
        return Client(True, f"MariaDB's {tool} (the stashplan image's client; none on this machine's PATH)")
    try:
        out = subprocess.run([found, "--no-defaults", "--version"], capture_output=True, text=True, timeout=10,
                             check=False, env={**os.environ, "LC_ALL": "C"}).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    name = Path(os.path.realpath(found)).name
    if (maria := re.search(r"Distrib (\d+\.\d+)[.\d]*-MariaDB|(\d+\.\d+)[.\d]*-MariaDB", out)) is not None:
        version = maria[1] or maria[2]
        return Client(True, f"MariaDB's {name} {version}" + ("" if name == tool else f" (as {tool})"))
    if (oracle := re.search(r"Ver (\d+\.\d+)", out)) is not None and "MariaDB" not in out:
        return Client(False, f"Oracle MySQL's {tool} {oracle[1]}")
    return Client(True, f"MariaDB's {tool} (its version could not be read)")


def _is_off(item: Parsed) -> bool:
    spelled = item.spelled.lstrip("-")
    return spelled.startswith(("skip-", "disable-")) or (item.value or "").lower() in _OFF


def adapt(options: ToolOptions, words: Sequence[str], param: str = "args") -> tuple[list[str], list[str]]:
    """`words` for the client that will run `options.tool`, and one note per option translated away.
    TransferError naming `param`, the option and the client for an Oracle-only option with no equivalent."""
    if not words:
        return [], []
    parsed = options.parse(words, param)
    oracle = [p for p in parsed if p.opt is not None and p.opt.name in _ORACLE_ONLY]
    if not oracle:
        return list(words), []
    runs = client(options.tool)
    if not runs.maria:
        return list(words), []
    notes: list[str] = []
    for item in oracle:
        assert item.opt is not None
        shown = item.spelled + (f"={item.value}" if item.value is not None else "")
        gtid_off = item.opt.name == "--set-gtid-purged" and (item.value or "").lower() == "off"
        if gtid_off or (item.opt.name == "--column-statistics" and _is_off(item)):
            notes.append(f"task param {param}: {shown} left out: it is Oracle MySQL's only, and the client that "
                         f"will run, {runs.label}, already dumps that way")
            continue
        raise TransferError(f"task param {param}: option {shown} is Oracle MySQL's only; the client that will run "
                            f"is {runs.label}, which does not know it: {_ORACLE_ONLY[item.opt.name]}")
    dropped = {id(p) for p in oracle}
    return rebuild([p for p in parsed if id(p) not in dropped]), notes

