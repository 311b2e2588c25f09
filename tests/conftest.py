"""Shared fixtures. The real SmolLM2 loads once per test session (~2 s from the dequantized
cache, ~20 s the first time on a fresh machine). The family tests' tiny-model builders
(``tests/models/families``) serve the engine and protocol tests too."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from taskvec.models.registry import load_model

FAMILIES = Path(__file__).resolve().parent / "models" / "families"
if str(FAMILIES) not in sys.path:
    sys.path.insert(0, str(FAMILIES))


@pytest.fixture(scope="session")
def smollm2():
    torch.manual_seed(0)
    return load_model("smollm2-135m")
