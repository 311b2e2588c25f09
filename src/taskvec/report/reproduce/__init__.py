"""The reproduction report: our tables beside the paper's, plots, and a verdict per claim.

Two steps. ``write_report`` (``write.py``) turns a finished reproduction (``pipelines.reproduce``)
into files: each condition run's and the analysis's own report, every table as CSV + Markdown
under ``tables/``, the plots (``plots.py``), the claims checked (``claims.py``) and
``report_context.json`` (what the report states beyond its tables: the tasks' sizes, the base
LLM, timings, the analysis layer). ``render_report`` (``render.py``) then writes ``report.md`` and
``report.html`` from those files alone (``folder.py``), laid out as a document (``document.py``:
our tables beside the paper's, ``beside_paper.py``; two variants of a model side by side,
``variants.py``), with no model, so a copied reproduction re-renders with the current code::

    taskvec report docs/reproduce-embedded-vlm [--plots]
"""

from taskvec.report.reproduce.beside_paper import (
    matrix_beside_paper,
    table3_beside_paper,
    table4_beside_paper,
)
from taskvec.report.reproduce.claims import claims, claims_beside
from taskvec.report.reproduce.folder import ReproductionFolder, compare_with
from taskvec.report.reproduce.plots import layer_references, plot_layer_curves
from taskvec.report.reproduce.render import render_report
from taskvec.report.reproduce.variants import variant_claims, variant_summary
from taskvec.report.reproduce.write import write_report

__all__ = [
    "ReproductionFolder",
    "claims",
    "claims_beside",
    "compare_with",
    "layer_references",
    "matrix_beside_paper",
    "plot_layer_curves",
    "render_report",
    "table3_beside_paper",
    "table4_beside_paper",
    "variant_claims",
    "variant_summary",
    "write_report",
]
