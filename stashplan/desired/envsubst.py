"""envsubst as Stash applies it to Tasks and Functions: each text with placeholders is parsed once (a 50,000-
configuration plan substitutes the same few Function args for every configuration), then filled in. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":=", ":-", "=", "-")
# A parsed text: literal strings and placeholders (name, mode, parsed default); mode is _VAR (`${NAME}`), _SET
# (`:=`/`:-`, the default also for an empty value) or _UNSET (`=`/`-`, the default only for an unset one).
_VAR, _SET, _UNSET = 0, 1, 2
Parts = tuple[Any, ...]


def _closing_brace(text: str, start: int) -> int:
    """Index of the '}' closing the '${' whose body starts at `start`, honouring nested '${...}'; -1 if none."""
    depth = 1
    i = start
    while True:
        close = text.find("}", i)
        if close < 0:
            return -1
        opening = text.find("${", i, close)
        if opening >= 0:  # a nested placeholder opens before this brace
            depth += 1
            i = opening + 2
            continue
        depth -= 1
        if depth == 0:
            return close
        i = close + 1


@lru_cache(maxsize=4096)
def _parse(value: str) -> Parts:
    """`value` as literal strings and placeholders (texts are immutable: a parse is kept for the next use)."""
    out: list[Any] = []
    i = 0
    while i < len(value):
        dollar = value.find("$", i)
        if dollar < 0:
            out.append(value[i:])
            break
        if dollar > i:
            out.append(value[i:dollar])
            i = dollar
        if value.startswith("$${", i):  # escaped: copy "${...}" literally, dropping one "$"
            end = _closing_brace(value, i + 3)
            stop = end + 1 if end >= 0 else len(value)
            out.append(value[i + 1 : stop])
            i = stop
            continue
        if not value.startswith("${", i):
            out.append(value[i])
            i += 1
            continue
        end = _closing_brace(value, i + 2)
        if end < 0:
            out.append(value[i:])
            break
        out.append(_placeholder(value[i + 2 : end], literal=value[i : end + 1]))
        i = end + 1
    return tuple(out)


def _placeholder(body: str, *, literal: str) -> Any:
    match = _NAME.match(body)
    if match is None:
        return literal
    name, rest = match.group(0), body[match.end() :]
    if not rest:
        return (name, _VAR, ())
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        return literal
    return (name, _SET if operator.startswith(":") else _UNSET, _parse(rest[len(operator) :]))


def _fill(parts: Parts, variables: Mapping[str, str]) -> str:
    out = []
    for part in parts:
        if type(part) is str:
            out.append(part)
            continue
        name, mode, default = part
        if mode == _VAR:
            out.append(variables.get(name, ""))
            continue
        current = variables.get(name)
        if mode == _SET:
            out.append(current if current else _fill(default, variables))
        else:
            out.append(current if current is not None else _fill(default, variables))
    return "".join(out)


def envsubst(value: str, variables: Mapping[str, str]) -> str:
    """Substitute Stash/envsubst placeholders in `value`.

    - `${VAR}`: the value of VAR; an unset VAR becomes "" (as drone/envsubst, which Stash uses).
    - `${VAR:=default}` / `${VAR:-default}`: default when VAR is unset *or empty*.
    - `${VAR=default}` / `${VAR-default}`: default only when VAR is unset.
    - defaults may themselves contain placeholders (`${A:=${B}}`); `$${VAR}` yields a literal `${VAR}`.
    - anything else (a lone `$`, `$VAR`, `${1}`, an unclosed `${`) is kept literally, so shell snippets
      in Function args survive."""
    if "$" not in value:  # most strings: nothing to substitute
        return value
    return _fill(_parse(value), variables)


def substitute(obj: Any, variables: Mapping[str, str]) -> Any:
    """A deep copy of `obj` with envsubst applied to every string (dict keys are kept as they are)."""
    kind = type(obj)  # plain dicts and lists first, their strings without '$' kept without a call: the common case
    if kind is dict:
        return {key: val if type(val) is str and "$" not in val else substitute(val, variables)
                for key, val in obj.items()}
    if kind is list:
        return [item if type(item) is str and "$" not in item else substitute(item, variables) for item in obj]
    if isinstance(obj, str):
        return envsubst(obj, variables)
    if isinstance(obj, dict):
        return {key: substitute(val, variables) for key, val in obj.items()}
    if isinstance(obj, list):
        return [substitute(item, variables) for item in obj]
    return obj
