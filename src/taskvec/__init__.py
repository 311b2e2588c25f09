"""taskvec: task vectors in language and vision-language models.

The data flow, one sub-package each, each importing only from those before it: tasks -> prompts
-> models -> patching -> vectors -> evaluation -> analysis / experiments -> pipelines -> report,
with the ``taskvec`` command on top (storage, config and errors at the bottom; see DEVELOPERS.md).
A pipeline computes and writes its results (``taskvec.evaluate``: a run folder); the report
floor writes what a reader reads of them (``taskvec.report.tables.write_run_report``).

    >>> import taskvec
    >>> model = taskvec.load_model("smollm2-135m")
    >>> task = taskvec.load_task("country_capital")
    >>> template = taskvec.get_template("spaced")
    >>> demos = [(d.input, d.label) for d in task.val[:5]]
    >>> prompts = [template.icl(demos, q.input) for q in task.val[5:]]
    >>> vector = taskvec.extract(
    ...     model, prompts, task=task.name, spec="text-icl", n_examples=5, template=template
    ... )
    >>> taskvec.patch(model, [template.query("France")], vector.at(20), layer=20)
"""

__version__ = "0.1.0"

import importlib
import importlib.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from taskvec.evaluation.protocol import ExperimentConfig
    from taskvec.models.loading import LoadOptions
    from taskvec.models.registry import load_model
    from taskvec.patching.patch import Patch, generate, generate_under_patches, patch
    from taskvec.patching.sweep import sweep
    from taskvec.pipelines.compare import compare_runs
    from taskvec.pipelines.evaluate import evaluate
    from taskvec.pipelines.results import list_runs, load_run
    from taskvec.prompts.template import PromptTemplate, get_template
    from taskvec.tasks.registry import load_task
    from taskvec.tasks.task import Item, Task
    from taskvec.vectors.extract import extract
    from taskvec.vectors.task_vector import TaskVector

#: each public name and the module it lives in: imported when first read (``__getattr__``)
_HOMES = {
    "ExperimentConfig": "taskvec.evaluation.protocol",
    "LoadOptions": "taskvec.models.loading",
    "load_model": "taskvec.models.registry",
    "Patch": "taskvec.patching.patch",
    "generate": "taskvec.patching.patch",
    "generate_under_patches": "taskvec.patching.patch",
    "patch": "taskvec.patching.patch",
    "sweep": "taskvec.patching.sweep",
    "compare_runs": "taskvec.pipelines.compare",
    "evaluate": "taskvec.pipelines.evaluate",
    "list_runs": "taskvec.pipelines.results",
    "load_run": "taskvec.pipelines.results",
    "PromptTemplate": "taskvec.prompts.template",
    "get_template": "taskvec.prompts.template",
    "load_task": "taskvec.tasks.registry",
    "Item": "taskvec.tasks.task",
    "Task": "taskvec.tasks.task",
    "extract": "taskvec.vectors.extract",
    "TaskVector": "taskvec.vectors.task_vector",
}
for _name in _HOMES:  # read again after ``importlib.reload(taskvec)``: a reload keeps this namespace
    globals().pop(_name, None)
del _name

__all__ = [
    "ExperimentConfig",
    "Item",
    "LoadOptions",
    "Patch",
    "PromptTemplate",
    "Task",
    "TaskVector",
    "compare_runs",
    "evaluate",
    "extract",
    "generate",
    "generate_under_patches",
    "get_template",
    "list_runs",
    "load_model",
    "load_run",
    "load_task",
    "patch",
    "sweep",
]


def __getattr__(name: str):
    """A public name, imported on first use: ``import taskvec`` (and so the ``taskvec`` command's
    ``--help``, ``tasks``, ``runs``) does not pay for torch and transformers until a name needs
    them. A subpackage or module read as an attribute (``taskvec.errors``) is imported too, as the
    eager imports did."""
    home = _HOMES.get(name)
    if home is None:
        if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f"{__name__}.{name}")  # ``taskvec.errors.ConfigError``
        raise AttributeError(f"module 'taskvec' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # read once: later reads are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
