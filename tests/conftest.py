"""Shared fixtures. The real SmolLM2 loads once per test session (~2 s from the dequantized
cache, ~20 s the first time on a fresh machine). Tiny models and other builders live in
``tests/helpers`` (imported as ``helpers.<module>``)."""

from __future__ import annotations

import os

import pytest
import torch

from taskvec.models.registry import load_model

#: fixtures that load a real pretrained model: every test that uses one, directly or through
#: another fixture, is marked ``slow`` (``pytest -m "not slow"`` skips them)
REAL_MODEL_FIXTURES = {"smollm2"}


def pytest_collection_modifyitems(items):
    for item in items:
        if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def smollm2():
    torch.manual_seed(0)
    return load_model("smollm2-135m")


def pytest_configure(config):
    """Under ``pytest -n N`` each worker takes one core: torch's threads (and those of the
    commands the tests start) would otherwise oversubscribe the machine."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        os.environ["MKL_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


@pytest.fixture
def saved_figures(monkeypatch):
    """The figures the report modules save, in order, to look inside after a plot function ran
    (they are ``Figure`` objects, never pyplot's current figure)."""
    import taskvec.report.plots as plots

    saved, write = [], plots.write_figure

    def recording(figure, path, **options):
        saved.append(figure)
        return write(figure, path, **options)

    monkeypatch.setattr(plots, "write_figure", recording)
    return saved
