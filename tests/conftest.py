"""Shared fixtures. The real SmolLM2 loads once per test session (~2 s from the dequantized
cache, ~20 s the first time on a fresh machine)."""

from __future__ import annotations

import pytest
import torch

from taskvec.models.registry import load_model


@pytest.fixture(scope="session")
def smollm2():
    torch.manual_seed(0)
    return load_model("smollm2-135m")
