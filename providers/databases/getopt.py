"""Command lines read as each tool reads them: GNU getopt_long (PostgreSQL), MariaDB's my_getopt, and the
exact-word loops of redis-cli and sqlite3. A `Grammar` turns words into `Parsed` options and operands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

NONE, REQUIRED, OPTIONAL = 0, 1, 2
Style = Literal["gnu", "mysql", "exact", "sqlite"]
_MYSQL_PREFIXES = ("skip", "disable", "enable", "maximum", "loose", "autoset")


class GetoptError(ValueError):
    """The tool itself would refuse these words (unknown or ambiguous option, missing argument)."""


@dataclass(frozen=True)
class Opt:
    """One option: its display name (`--file`, or `-x` when it has no long name) and how many words of
    argument it takes: NONE, REQUIRED, OPTIONAL (attached only), or for `exact`/`sqlite` a count (-1: all)."""

    name: str
    arg: int


@dataclass(frozen=True)
class Parsed:
    """An option as the tool reads it (`opt` set, with its `value`) or an operand (`opt` None)."""

    opt: Opt | None
    value: str | None
    spelled: str  # how the words named it: `-f`, `--fil`, `--loose-execute`, or the operand itself


@dataclass(frozen=True)
class Grammar:
    """A tool's options: `long` maps long names (no dashes) to options, `short` maps letters to options."""

    tool: str
    style: Style
    long: dict[str, Opt] = field(default_factory=dict)
    short: dict[str, Opt] = field(default_factory=dict)

    def options(self) -> set[Opt]:
        return set(self.long.values()) | set(self.short.values())

    def parse(self, words: Sequence[str]) -> list[Parsed]:
        """The options and operands the tool would read from `words`; GetoptError where it would stop."""
        if self.style == "gnu":
            return self._parse_getopt(words, mysql=False)
        if self.style == "mysql":
            return self._parse_getopt(words, mysql=True)
        return self._parse_exact(words)

    # --- GNU getopt_long and my_getopt: bundled short options, attached values, long prefixes, `--` ---

    def _parse_getopt(self, words: Sequence[str], *, mysql: bool) -> list[Parsed]:
        out: list[Parsed] = []
        i = 0
        while i < len(words):
            word = words[i]
            if word == "--":
                out += [Parsed(None, None, w) for w in words[i + 1:]]
                break
            if word.startswith("--"):
                name, eq, value = word[2:].partition("=")
                opt, negated = self._long_mysql(name) if mysql else (self._lookup(name), False)
                if negated or opt.arg == OPTIONAL or eq:
                    if eq and opt.arg == NONE and not mysql:
                        raise GetoptError(f"option '--{name}' ({opt.name}) doesn't allow an argument")
                    out.append(Parsed(opt, value if eq else None, "--" + name))
                elif opt.arg == REQUIRED:
                    if i + 1 >= len(words):
                        raise GetoptError(f"option '--{name}' requires an argument")
                    i += 1
                    out.append(Parsed(opt, words[i], "--" + name))
                else:
                    out.append(Parsed(opt, None, "--" + name))
            elif word.startswith("-") and word != "-":
                j = 1
                while j < len(word):
                    opt_or_none = self.short.get(word[j])
                    if opt_or_none is None:
                        raise GetoptError(f"invalid option -- '{word[j]}'")
                    opt, rest = opt_or_none, word[j + 1:]
                    if opt.arg == NONE:
                        out.append(Parsed(opt, None, "-" + word[j]))
                        j += 1
                        continue
                    if not rest and opt.arg == REQUIRED:
                        if i + 1 >= len(words):
                            raise GetoptError(f"option requires an argument -- '{word[j]}'")
                        i += 1
                        rest = words[i]
                    out.append(Parsed(opt, rest or None, "-" + word[j]))
                    break
            else:
                out.append(Parsed(None, None, word))
            i += 1
        return out

    def _lookup(self, name: str, *, mysql: bool = False) -> Opt:
        """Exact name, else a unique prefix (several names of one option are one match), as both
        getopt_long and my_getopt do; my_getopt also reads `_` as `-`."""
        key = name.replace("_", "-") if mysql else name
        if key in self.long:
            return self.long[key]
        found = {opt for long, opt in self.long.items() if long.startswith(key)} if key else set()
        if len(found) == 1:
            return found.pop()
        if found:
            names = ", ".join(sorted("--" + n for n, o in self.long.items() if n.startswith(key)))
            raise GetoptError(f"option '--{name}' is ambiguous; possibilities: {names}")
        raise GetoptError(f"unrecognized option '--{name}'")

    def _long_mysql(self, name: str) -> tuple[Opt, bool]:
        """my_getopt: the option itself, else `skip-`, `disable-`, `enable-`, `maximum-`, `loose-`,
        `autoset-` prefixes (stacked) before it; returns the option and whether a prefix gave its value."""
        rest, valued = name, False
        while True:
            try:
                return self._lookup(rest, mysql=True), valued
            except GetoptError as exc:
                if "ambiguous" in str(exc):
                    raise
            for prefix in _MYSQL_PREFIXES:
                if rest.lower().startswith(prefix) and rest[len(prefix):len(prefix) + 1] in ("-", "_"):
                    rest = rest[len(prefix) + 1:]
                    valued = valued or prefix in ("skip", "disable", "enable")
                    break
            else:
                raise GetoptError(f"unknown option '--{name}'")

    # --- redis-cli and sqlite3: whole words compared with option names; the first other word ends options ---

    def _parse_exact(self, words: Sequence[str]) -> list[Parsed]:
        out: list[Parsed] = []
        i = 0
        while i < len(words):
            word = words[i]
            if not word.startswith("-") or word == "-":
                out += [Parsed(None, None, w) for w in words[i:]]
                break
            key = "-" + word[2:] if self.style == "sqlite" and word.startswith("--") else word
            opt = self.long.get(key)
            if opt is None:
                raise GetoptError(f"unrecognized option '{word}'")
            take = len(words) - i - 1 if opt.arg < 0 else opt.arg
            if i + take >= len(words):
                raise GetoptError(f"option '{word}' needs {take} argument(s)")
            out.append(Parsed(opt, " ".join(words[i + 1:i + 1 + take]) or None, key))
            i += take + 1
        return out


def gnu(tool: str, short: str, longs: str) -> Grammar:
    """A getopt_long grammar from its short-option string (`f:` takes an argument, `f::` an optional one)
    and long options: `name=c` is the long name of short `c`; `name`, `name:`, `name::` stand alone."""
    g = Grammar(tool, "gnu")
    kinds: dict[str, int] = {}
    i = 0
    while i < len(short):
        c, n = short[i], len(short[i + 1:]) - len(short[i + 1:].lstrip(":"))
        kinds[c] = min(n, 2)
        i += 1 + n
    names: dict[str, str] = {}
    for spec in longs.split():
        name, _, letter = spec.partition("=")
        if letter:
            names.setdefault(letter, name)
    for c, kind in kinds.items():
        g.short[c] = Opt("--" + names[c] if c in names else "-" + c, kind)
    for spec in longs.split():
        name, _, letter = spec.partition("=")
        if letter:
            g.long[name] = g.short[letter]
        else:
            bare = name.rstrip(":")
            g.long[bare] = Opt("--" + bare, min(len(name) - len(bare), 2))
    return g


def mysql(tool: str, specs: str) -> Grammar:
    """A my_getopt grammar from `name:c:K` items (c the short letter or empty; K = N, R or O); a second
    name for a letter already given is a synonym of that option (`--i-am-a-dummy` is `-U`, `--safe-updates`)."""
    g = Grammar(tool, "mysql")
    for spec in specs.split():
        name, letter, kind = spec.split(":")
        opt = g.long.get(name) or g.short.get(letter) or Opt("--" + name, {"N": NONE, "R": REQUIRED, "O": OPTIONAL}[kind])
        g.long[name] = opt
        if letter:
            g.short.setdefault(letter, opt)
    return g


def exact(tool: str, specs: str, *, sqlite: bool = False) -> Grammar:
    """Whole-word options: `-h:1` takes one word, `-A:*` all that follow, `-x` none."""
    g = Grammar(tool, "sqlite" if sqlite else "exact")
    for spec in specs.split():
        name, _, n = spec.partition(":")
        g.long[name] = Opt(name, -1 if n == "*" else int(n or 0))
    return g
