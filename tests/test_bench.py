"""The benchmarks stay runnable: every module of ``bench/`` imports (no nnsight, no GPU needed)
against the package as it is now, so a refactor that breaks one fails here, not on the next
hand-run."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(m.name for m in pkgutil.iter_modules([str(ROOT / "bench")]))


def test_there_are_benchmarks():
    assert {"common", "stages", "table", "arithmetic", "peers"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_a_benchmark_imports_without_nnsight_and_parses_its_options(name):
    """Each module imports (nnsight only where its peer runs) and, if it is a script, its
    ``main`` parses ``--help``: what ``python -m bench.<name> --help`` does."""
    code = (
        f"import sys, bench.{name} as module; "
        "assert 'nnsight' not in sys.modules, 'nnsight imported at module level'; "
        "assert module.__doc__; "
        "main = getattr(module, 'main', None); "
        "sys.argv = ['bench', '--help']; "
        "main and main()"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    if name != "common":
        assert "usage:" in result.stdout
