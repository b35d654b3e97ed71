"""Turning pydantic validation errors into stashplan's one-line problems: "<field.path>: <message>". Pure."""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails


def field_path(loc: Sequence[int | str]) -> str:
    """("spec", "steps", 0, "name") -> "spec.steps[0].name"."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(object)"


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Union-with-None so that the remaining type can be inspected."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return _unwrap(rest[0])
    return annotation


def _model_at(root: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class that validated the object at `loc` (aliases), or None when it is not a model."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        origin = get_origin(current)
        if isinstance(part, int) and origin is list:
            current = get_args(current)[0]
            continue
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            field = next(
                (f for n, f in current.model_fields.items() if (f.alias or n) == part),
                None,
            )
            if field is None:
                return None
            current = field.annotation
            continue
        return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def known_fields(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _message(root: type[BaseModel], err: ErrorDetails) -> str:
    kind = err["type"]
    loc = err["loc"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        parent = _model_at(root, loc[:-1])
        unknown = str(loc[-1]) if loc else ""
        if parent is None:
            return "unknown field"
        allowed = known_fields(parent)
        close = difflib.get_close_matches(unknown, allowed, n=1, cutoff=0.6)
        if close:
            return f"unknown field {unknown!r}; did you mean {close[0]!r}?"
        return f"unknown field {unknown!r}; allowed: {', '.join(allowed)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a mapping (key: value pairs)"
    if kind == "list_type":
        return "must be a list"
    if kind == "string_type":
        return "must be a string (quote the value in YAML)"
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return msg


def validation_problems(root: type[BaseModel], exc: ValidationError) -> list[tuple[str, str]]:
    """(field path, message) pairs of a ValidationError raised while validating `root`; no input values."""
    return [(field_path(err["loc"]), _message(root, err)) for err in exc.errors(include_input=False)]
