"""Which options a task's `args` may carry, per tool: an allow-list, and the refused options with why.

Options that redirect output, run commands, read options or commands from files, or change the connection
target are refused with a reason; anything not on the allow-list is refused too. Checked at plan time (the
CLI hands `check_task_params` to the planner) and again by the provider in the Job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from stashplan.errors import TransferError

OUTPUT = "it writes output somewhere other than the backup stream"
COMMANDS = "it runs commands"
FILES = "it reads options or commands from a file"
TARGET = "it changes the connection target (the AppBinding sets it)"
FORMAT = "the restore replays plain SQL, so the dump must stay plain SQL"
ERRORS = "it hides errors (a failure must fail the session)"


@dataclass(frozen=True)
class ToolOptions:
    """The options `args` may pass to `tool`. `valued` options take a value (`--opt=v` or `--opt v`);
    `refused` maps options to why they are refused; `positional`: whether plain words are allowed."""

    tool: str
    allowed: frozenset[str]
    valued: frozenset[str] = frozenset()
    refused: Mapping[str, str] = field(default_factory=dict)
    positional: bool = False
    single_dash_long: bool = False  # sqlite3: `-cmd` and `--cmd` are the same option

    def check(self, words: Sequence[str], param: str = "args") -> None:
        """TransferError naming `param` and the first option that is not allowed."""
        skip = False
        for word in words:
            if skip:
                skip = False
                continue
            if word == "--" or not word.startswith("-") or word == "-":
                if not self.positional:
                    raise TransferError(f"task param {param}: {word!r} is not allowed for {self.tool}: "
                                        "only options are, and no plain arguments")
                continue
            name, has_value = self._name(word)
            if name in self.refused:
                raise TransferError(f"task param {param}: option {name} is not allowed for {self.tool}: "
                                    f"{self.refused[name]}")
            if name not in self.allowed and name not in self.valued:
                raise TransferError(f"task param {param}: option {name} is not allowed for {self.tool} "
                                    "(not on its allow-list)")
            skip = name in self.valued and not has_value

    def _name(self, word: str) -> tuple[str, bool]:
        if self.single_dash_long:
            head, eq, _ = word.lstrip("-").partition("=")
            return "-" + head, bool(eq)
        if word.startswith("--"):
            head, eq, _ = word.partition("=")
            return head, bool(eq)
        return word[:2], len(word) > 2  # -n schema / -nschema


def tool_options(tool: str, allowed: Iterable[str], valued: Iterable[str] = (), refused: Mapping[str, str] | None = None,
          *, positional: bool = False, single_dash_long: bool = False) -> ToolOptions:
    return ToolOptions(tool, frozenset(allowed), frozenset(valued), dict(refused or {}), positional, single_dash_long)


def refuse(reason: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, reason)


def check_backup_cmd(backup_cmd: str, tools: Sequence[str]) -> str:
    """The tool name `backupCMD` selects (resolved on PATH), or TransferError; "" selects the default."""
    cmd = backup_cmd.strip()
    if not cmd:
        return ""
    if "/" in cmd or cmd not in tools:
        raise TransferError(f"task param backupCMD: must be one of {', '.join(tools)} (a tool name, found on "
                            f"PATH), not {cmd!r}")
    return cmd
