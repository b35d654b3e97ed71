"""Generated and mutated manifests thrown at `plan` (in-process): each ends in a plan or one-line errors with
exit 1 — no traceback, no hang (10 s deadline per input), no memory over 500 MB. `make fuzz` runs many more."""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from tests.fuzz.check import plan_survives
from tests.fuzz.manifests import mutated_documents, mutated_texts, schema_documents

EXAMPLES = int(os.environ.get("STASHPLAN_FUZZ_EXAMPLES", "670"))  # x3 strategies: 2,010 inputs in make test
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=10), database=None, derandomize=EXAMPLES <= 670,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
_FOLDER = Path(tempfile.mkdtemp(prefix="stashplan-fuzz-"))


@FUZZ
@given(mutated_documents())
def test_plan_survives_field_mutations_of_seed_manifests(text: str) -> None:
    plan_survives(text, _FOLDER)


@FUZZ
@given(mutated_texts())
def test_plan_survives_byte_mutations_of_seed_files(text: str) -> None:
    plan_survives(text, _FOLDER)


@FUZZ
@given(schema_documents())
def test_plan_survives_objects_generated_from_the_crd_schemas(text: str) -> None:
    plan_survives(text, _FOLDER)
