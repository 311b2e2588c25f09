"""The figure of the LoRA recipes (``scripts/plot_lora_recipes.py``) reads every row of the recipe
table in docs/embedded-vlm.md, so the figure and the table cannot drift apart unseen."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "plot_lora_recipes.py"
_spec = importlib.util.spec_from_file_location("plot_lora_recipes", SCRIPT)
plot_lora_recipes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plot_lora_recipes)


def test_every_row_of_the_recipe_table_is_read_with_its_numbers():
    table = plot_lora_recipes.recipe_table()
    rows = plot_lora_recipes.recipe_rows()
    assert len(rows) == len(table) - 2 > 40  # all but the header and the rule
    by_name = {row["name"]: row for row in rows}
    assert by_name["frozen LLM"]["cosine"] == 1.0
    assert by_name["L (shipped)"]["text_patch"] == 0.447  # "0.447 (0.378)": the paper metric, not whole_label
    assert all(0 < row["cosine"] <= 1 and 0 <= row["text_patch"] <= 1 for row in rows)


def test_the_figure_is_written(tmp_path):
    out = tmp_path / "recipes.png"
    plot_lora_recipes.plot(plot_lora_recipes.recipe_rows(), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
