"""Each vision-language family's tiny model and ``FamilyCase`` (one module per family, like
``taskvec.models.families``). ``CASES`` gathers every module's ``CASES`` by discovery, so a new
family's case file is under the shared contract (``tests/models/families/test_contract.py``)
with no other edit."""

from __future__ import annotations

import importlib
import pkgutil

from helpers.contract import FamilyCase


def _discover() -> list[FamilyCase]:
    cases = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found = getattr(module, "CASES", None)
        if not found:
            raise AssertionError(f"{module.__name__} declares no CASES")
        cases += found
    return cases


CASES: list[FamilyCase] = _discover()
