"""Which options a task's `args` may carry, per tool: the words read with the tool's own grammar
(`providers.databases.grammars`: bundles, attached values, long prefixes, `--`), then an allow-list by name.

Options that redirect output, run commands, read options or commands from files, or change the connection
target are refused with a reason; anything not on the allow-list is refused too. Checked at plan time (the
CLI hands `check_task_params` to the planner) and again by the provider in the Job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from providers.databases.getopt import GetoptError, Grammar, Parsed
from stashplan.errors import TransferError

OUTPUT = "it writes output somewhere other than the backup stream"
COMMANDS = "it runs commands"
FILES = "it reads options or commands from a file"
TARGET = "it changes the connection target (the AppBinding sets it)"
FORMAT = "the restore replays plain SQL, so the dump must stay plain SQL"
ERRORS = "it hides errors (a failure must fail the session)"
OTHER = "it does not do the transfer's work (help, version, interactive or listing modes)"


@dataclass(frozen=True)
class ToolOptions:
    """The options `args` may pass to a tool, read with the tool's own `grammar`: `allowed` names pass,
    `refused` maps names to why not (anything else is refused too); `positional`: operands may pass;
    `operand_with`: options with which exactly one operand may pass (where the tool reads it, anywhere)."""

    grammar: Grammar
    allowed: frozenset[str]
    refused: Mapping[str, str] = field(default_factory=dict)
    positional: bool = False
    operand_with: frozenset[str] = frozenset()

    @property
    def tool(self) -> str:
        return self.grammar.tool

    def parse(self, words: Sequence[str], param: str = "args") -> list[Parsed]:
        """The words as the tool reads them; TransferError naming `param` where the tool would stop."""
        try:
            return self.grammar.parse(words)
        except GetoptError as exc:
            head = next((w.partition("=")[0] for w in words if "=" in w and w.startswith("-")), "")
            key = "-" + head.lstrip("-") if self.grammar.style == "sqlite" else head
            if key in self.refused:  # e.g. sqlite3's `--cmd=.shell`: name the option, not the parse error
                raise TransferError(f"task param {param}: option {key} is not allowed for {self.tool}: "
                                    f"{self.refused[key]}") from None
            raise TransferError(f"task param {param}: {self.tool} would refuse it: {exc}") from None

    def check(self, words: Sequence[str], param: str = "args") -> list[Parsed]:
        """TransferError naming `param` and the first option (as the tool reads it) that is not allowed."""
        parsed = self.parse(words, param)
        operands = 0
        for item in parsed:
            if item.opt is None:
                operands += 1
                if not self.positional:
                    self._check_operand(parsed, item, operands, param)
                continue
            name = item.opt.name
            shown = name if item.spelled == name or item.spelled.startswith("--") else f"{item.spelled} ({name})"
            if name in self.refused:
                raise TransferError(f"task param {param}: option {shown} is not allowed for {self.tool}: "
                                    f"{self.refused[name]}")
            if name not in self.allowed:
                raise TransferError(f"task param {param}: option {shown} is not allowed for {self.tool} "
                                    "(not on its allow-list)")
        return parsed

    def _check_operand(self, parsed: Sequence[Parsed], item: Parsed, nth: int, param: str) -> None:
        with_ = next((p.spelled for p in parsed if p.opt is not None and p.opt.name in self.operand_with), "")
        if not with_:
            but = f" (but one with {', '.join(sorted(self.operand_with))})" if self.operand_with else ""
            raise TransferError(f"task param {param}: {item.spelled!r} is not allowed for {self.tool}: only options "
                                f"are, and no plain arguments{but}")
        if nth > 1:
            raise TransferError(f"task param {param}: {item.spelled!r} is not allowed for {self.tool}: {with_} takes "
                                "one plain argument (the database), and there is already one")

    def operand(self, words: Sequence[str]) -> str | None:
        """The one operand `words` carry (after `check` passed), else None."""
        return next((p.spelled for p in self.parse(words) if p.opt is None), None)

    def names(self, words: Sequence[str]) -> set[str]:
        """The option names the tool reads from `words` (after `check` passed)."""
        return {p.opt.name for p in self.parse(words) if p.opt is not None}


def tool_options(grammar: Grammar, allowed: Iterable[str], refused: Mapping[str, str] | None = None,
                 *, positional: bool = False, operand_with: Iterable[str] = ()) -> ToolOptions:
    """Options for a grammar; every allowed or refused name must be one of the grammar's options, and every
    `operand_with` name an allowed one."""
    known = {o.name for o in grammar.options()}
    unknown = sorted({*allowed, *(refused or {})} - known) + sorted(set(operand_with) - set(allowed))
    if unknown:
        raise ValueError(f"{grammar.tool}: no such options in its grammar: {', '.join(unknown)}")
    return ToolOptions(grammar, frozenset(allowed), dict(refused or {}), positional, frozenset(operand_with))


def rebuild(parsed: Sequence[Parsed]) -> list[str]:
    """Words that a my_getopt tool (which reads options after operands too) reads as `parsed`."""
    words: list[str] = []
    for p in parsed:
        if p.opt is None and p.spelled.startswith("-"):
            raise TransferError(f"task param args: operand {p.spelled!r} cannot be combined with multiDumpArgs")
        if p.opt is None or p.value is None:
            words.append(p.spelled)
        else:
            words.append(f"{p.spelled if p.spelled.startswith('--') else p.opt.name}={p.value}")
    return words


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
