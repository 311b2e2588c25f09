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

from taskvec.evaluation.protocol import ExperimentConfig  # noqa: E402
from taskvec.models.registry import load_model  # noqa: E402
from taskvec.patching.patch import Patch, generate, generate_under_patches, patch  # noqa: E402
from taskvec.patching.sweep import sweep  # noqa: E402
from taskvec.pipelines.evaluate import evaluate  # noqa: E402
from taskvec.pipelines.results import list_runs, load_run  # noqa: E402
from taskvec.prompts.template import PromptTemplate, get_template  # noqa: E402
from taskvec.tasks.registry import load_task  # noqa: E402
from taskvec.tasks.task import Item, Task  # noqa: E402
from taskvec.vectors.extract import extract  # noqa: E402
from taskvec.vectors.task_vector import TaskVector  # noqa: E402

__all__ = [
    "ExperimentConfig",
    "Item",
    "Patch",
    "PromptTemplate",
    "Task",
    "TaskVector",
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
