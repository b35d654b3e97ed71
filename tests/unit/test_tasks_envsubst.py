"""envsubst with Stash's semantics: ${VAR}, ${VAR:=default}, ${VAR=default}, escapes and literals."""

from __future__ import annotations

from typing import Any

import pytest

from stashplan.desired.tasks import envsubst, substitute

VARS = {"NAMESPACE": "demo", "EMPTY": "", "args": "--clean", "B": "bee"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("--namespace=${NAMESPACE}", "--namespace=demo"),
        ("--x=${UNSET}", "--x="),  # unset -> "" (drone/envsubst, as Stash)
        ("--ns=${NAMESPACE:=default}", "--ns=demo"),
        ("--ns=${UNSET:=default}", "--ns=default"),
        ("--ns=${EMPTY:=default}", "--ns=default"),  # := also replaces an empty value
        ("--ns=${EMPTY:-default}", "--ns=default"),
        ("--ns=${EMPTY=default}", "--ns="),  # = only replaces an unset value
        ("--ns=${UNSET-default}", "--ns=default"),
        ("--session=${BACKUP_SESSION:=}", "--session="),
        ("--args=${args:=--all-databases}", "--args=--clean"),
        ("--args=${UNSET:=--all-databases --single-transaction}", "--args=--all-databases --single-transaction"),
        ("${UNSET:=${B}}", "bee"),  # nested default
        ("${UNSET:=${ALSO_UNSET:=x}}-y", "x-y"),
        ("${NAMESPACE}/${B}", "demo/bee"),
        ("$${NAMESPACE}", "${NAMESPACE}"),  # escaped
        ("cost: $5 and $HOME and $(VAR)", "cost: $5 and $HOME and $(VAR)"),  # only ${...} is substituted
        ("${1} ${not valid}", "${1} ${not valid}"),
        ("unclosed ${NAMESPACE", "unclosed ${NAMESPACE"),
        ("", ""),
    ],
)
def test_envsubst(text: str, expected: str) -> None:
    assert envsubst(text, VARS) == expected


def test_substitute_is_deep_and_leaves_keys_and_non_strings_alone() -> None:
    obj: dict[str, Any] = {"${B}": ["${NAMESPACE}", {"n": 3, "flag": True, "s": "${UNSET:=d}"}], "none": None}
    assert substitute(obj, VARS) == {"${B}": ["demo", {"n": 3, "flag": True, "s": "d"}], "none": None}
    assert obj["${B}"][0] == "${NAMESPACE}"  # input not modified


def test_a_text_substituted_again_takes_the_new_values() -> None:
    # Each text is parsed once and kept; the values are looked up at every substitution.
    text = "--host=${HOST} --db=${DB:=${FALLBACK=app}} --mode=${MODE-plain}"
    assert envsubst(text, {"HOST": "a"}) == "--host=a --db=app --mode=plain"
    assert envsubst(text, {"HOST": "b", "FALLBACK": ""}) == "--host=b --db= --mode=plain"
    assert envsubst(text, {"HOST": "c", "DB": "x", "MODE": ""}) == "--host=c --db=x --mode="
    assert envsubst(text, {}) == "--host= --db=app --mode=plain"
