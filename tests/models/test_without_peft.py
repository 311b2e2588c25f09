"""peft is needed by the LoRA-tuned embedded VLM only: the package and its command line import
without it (a GPU machine that brings its own torch may lack it), and asking for the tuned variant
there says in one line what is missing, before any weights load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WITHOUT_PEFT = "import sys; sys.modules['peft'] = None; "


def _python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_PEFT + code], capture_output=True, text=True, env=env
    )


def test_the_package_and_its_cli_import_without_peft():
    result = _python(
        "import taskvec, taskvec.cli, taskvec.pipelines.evaluate, taskvec.pipelines.reproduce; "
        "from taskvec.models.registry import load_model; print('imported')"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "imported" in result.stdout


def test_the_tuned_variant_without_peft_says_what_is_missing_before_loading_weights():
    result = _python(
        "from taskvec.models.embedded import load as module\n"
        "def no_weights(*args, **kwargs):\n"
        "    raise AssertionError('weights were read before peft was checked')\n"
        "module.load_weights = no_weights\n"
        "from taskvec.errors import ModelSpecError\n"
        "try:\n"
        "    module.load_embedded_vlm('gemma3', tuned=True)\n"
        "except ModelSpecError as error:\n"
        "    print('ERROR', error)\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ERROR embedded-vlm-gemma3-lora needs peft" in result.stdout
    assert "pip install peft" in result.stdout
