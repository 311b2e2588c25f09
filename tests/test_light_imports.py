"""``import taskvec`` and the ``taskvec`` command's help pages, ``tasks`` and ``runs`` import neither
torch nor transformers: a public name of the package is imported when it is first read. (They
took 2.3-2.5 s each on a 2-core machine, most of it importing torch; now 0.3-0.6 s:
docs/benchmarks.md.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers.reliability import write_tiny_task
from helpers.tinyllm import tiny_llm

import taskvec
from taskvec.evaluation.protocol import ExperimentConfig

#: run in a fresh interpreter: which heavy libraries the commands imported, and what they printed
COMMANDS = """
import json, sys
from typer.testing import CliRunner
from taskvec.cli import app
outputs = []
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(app, args, env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert result.exit_code == 0, (args, result.output)
    outputs.append(result.output)
heavy = sorted(m for m in ("torch", "transformers") if m in sys.modules)
print(json.dumps({"heavy": heavy, "outputs": outputs}))
"""


def test_help_tasks_and_runs_do_not_import_torch(tmp_path):
    model = tiny_llm("llama")
    config = ExperimentConfig.create(
        model=model.name, tasks=[str(write_tiny_task(tmp_path / "data"))], seeds=[1], layers=[0, 1]
    )
    taskvec.evaluate(config, out=tmp_path / "runs" / "tiny", adapter=model, show_progress=False)
    commands = [["--help"], ["run", "--help"], ["reproduce", "--help"], ["tasks"]]
    commands.append(["runs", str(tmp_path / "runs")])
    done = subprocess.run(
        [sys.executable, "-c", COMMANDS, json.dumps(commands)], capture_output=True, text=True, check=True
    )
    seen = json.loads(done.stdout)
    assert seen["heavy"] == []
    listed = seen["outputs"][-1]
    assert "tiny" in listed and "complete" in listed and model.name in listed  # the run was read


def test_every_public_name_is_there_when_read():
    done = subprocess.run(
        [sys.executable, "-c", "from taskvec import *; import taskvec; print(len(taskvec.__all__))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(done.stdout) == len(taskvec.__all__)
    for name in taskvec.__all__:
        value = getattr(taskvec, name)
        assert value.__name__ == name and value.__module__.startswith("taskvec.")
    assert set(taskvec.__all__) <= set(dir(taskvec))
    # a module read as an attribute is there, as the eager imports made it (``except
    # taskvec.errors.ConfigError`` before any public name was read)
    module = "import taskvec; print(taskvec.errors.ConfigError.__name__, taskvec.config.DEFAULT_MODEL)"
    done = subprocess.run([sys.executable, "-c", module], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["ConfigError", "smollm2-135m"]
    with pytest.raises(AttributeError, match="no attribute 'load_modle'"):
        taskvec.load_modle  # noqa: B018  (a typo is an AttributeError, as for any module)


def test_a_reloaded_package_names_the_reloaded_code():
    """A researcher editing taskvec in a notebook reloads it: the public names must be the new
    code's (kept from the first read, they stayed the old code's)."""
    script = (
        "import importlib, taskvec, taskvec.patching.patch as home\n"
        "old = taskvec.Patch\n"
        "importlib.reload(home)\n"
        "importlib.reload(taskvec)\n"
        "print(taskvec.Patch is home.Patch and taskvec.Patch is not old)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"
