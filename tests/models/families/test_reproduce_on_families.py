"""``taskvec reproduce`` runs on any supported family, not only the embedded VLM: a quick
reproduction on tiny random LLaVA and Qwen2-VL models writes the whole report (Table 4 is skipped
for lack of a base LLM, and the report says so). The numbers of a random model mean nothing; the
run, the tables and the report's shape are what is tested."""

import pandas as pd
import pytest
import torch
from helpers.families import llava, qwen2_vl

from taskvec.experiments.conditions import Condition
from taskvec.models.shared_work import SharedWork
from taskvec.pipelines.reproduce import ReproduceConfig, reproduce, run_conditions
from taskvec.report.reproduce import write_report
from taskvec.storage.run_folder import RunFolder
from taskvec.vectors.task_vector import TaskVector

BUILDERS = {"llava": llava.build_llava, "qwen2_vl": lambda: qwen2_vl.build("qwen2_vl")}


@pytest.mark.parametrize("family", BUILDERS)
def test_a_quick_reproduction_on_a_tiny_family_writes_the_whole_report(family, tmp_path):
    adapter = BUILDERS[family]()
    config = ReproduceConfig.create(quick=True, tasks=["country_capital", "country_currency"])
    path = write_report(reproduce(config, tmp_path, adapter=adapter, show_progress=False))
    text = (tmp_path / "report.md").read_text()
    assert str(tmp_path / "report.md") == str(path)
    for heading in ("Table 3", "Table 10", "Fig. 8", "Fig. 9", "Claims"):
        assert heading in text
    assert "Table 4" in text and "skipped" in text.split("Table 4", 1)[1][:600]
    table = pd.read_csv(tmp_path / "tables" / "table3_noto_paper.csv", index_col=0)
    assert list(table.index) == [
        "No Context",
        "Majority",
        "Label prior",
        "Image ICL Base",
        "Image ICL Patch",
        "Text ICL xBase",
        "Text ICL xPatch",
        "Top-label share (test split)",
    ]
    assert ((table >= 0) & (table <= 1)).all().all()
    assert '"state": "complete"' in (tmp_path / "status.json").read_text()


def test_conditions_with_the_same_prompts_compute_them_once(tmp_path):
    """Within a reproduction, text ICL -> text and -> image extract the same vectors, and every
    image-query condition of a style asks the same No Context answers: with one ``SharedWork``
    each is computed once, and the shared results are the ones an unshared run computes."""
    adapter = llava.build_llava()
    options = dict(tasks=["country_capital"], seeds=[1], layers=[0, 1], answer_tokens=2)
    conditions = [
        Condition("text-icl", "text"),
        Condition("text-icl", "image", "noto"),
        Condition("instruction", "image", "noto"),
    ]
    shared = SharedWork()
    results = run_conditions(adapter, conditions, tmp_path / "shared", False, shared, **options)
    # reused: the text-ICL vector (text -> image) and the image No Context answers (instruction)
    reused = {what: n for (what, outcome), n in shared.tally.items() if outcome == "reused"}
    assert reused == {"last-token states": 1, "greedy answers": 1}
    computed = {what: n for (what, outcome), n in shared.tally.items() if outcome == "computed"}
    # per condition: val and test sweeps, xBase and No Context (but once), chosen-layer xPatch
    assert computed == {"last-token states": 2, "sweep": 6, "greedy answers": 5, "patched answers": 3}
    alone = run_conditions(adapter, conditions[1:2], tmp_path / "alone", False, None, **options)

    def unit(result):
        return RunFolder(result.folder.root).load_unit("country_capital", 1)

    def vector(result, spec):
        return TaskVector.load(result.folder.vector_path("country_capital", spec, 1)).vectors

    text_to_image, instruction = results[conditions[1]], results[conditions[2]]
    assert unit(text_to_image)["test"] == unit(alone[conditions[1]])["test"]
    assert torch.equal(vector(text_to_image, "text-icl"), vector(alone[conditions[1]], "text-icl"))
    assert torch.equal(vector(text_to_image, "text-icl"), vector(results[conditions[0]], "text-icl"))
    no_context = [[row["no_context_answer"] for row in unit(r)["test"]] for r in (text_to_image, instruction)]
    assert no_context[0] == no_context[1]
