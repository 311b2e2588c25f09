"""``taskvec reproduce`` runs on any supported family, not only the embedded VLM: a quick
reproduction on tiny random LLaVA and Qwen2-VL models writes the whole report (Table 4 is skipped
for lack of a base LLM, and the report says so). The numbers of a random model mean nothing; the
run, the tables and the report's shape are what is tested."""

import pandas as pd
import pytest
import test_llava
import test_qwen2_vl

from taskvec.experiments.reproduce import ReproduceConfig, reproduce

BUILDERS = {"llava": test_llava.build_llava, "qwen2_vl": lambda: test_qwen2_vl.build("qwen2_vl")}


@pytest.mark.parametrize("family", BUILDERS)
def test_a_quick_reproduction_on_a_tiny_family_writes_the_whole_report(family, tmp_path):
    adapter = BUILDERS[family]()
    config = ReproduceConfig.create(quick=True, tasks=["country_capital", "country_currency"])
    path = reproduce(config, tmp_path, adapter=adapter, show_progress=False)
    text = (tmp_path / "report.md").read_text()
    assert str(tmp_path / "report.md") == str(path)
    for heading in ("Table 3", "Table 10", "Fig. 8", "Fig. 9", "Claims"):
        assert heading in text
    assert "Table 4" in text and "skipped" in text.split("Table 4", 1)[1][:600]
    table = pd.read_csv(tmp_path / "tables" / "table3_noto_paper.csv", index_col=0)
    assert list(table.index) == [
        "No Context",
        "Majority",
        "Image ICL Base",
        "Image ICL Patch",
        "Text ICL xBase",
        "Text ICL xPatch",
    ]
    assert ((table >= 0) & (table <= 1)).all().all()
    assert '"state": "complete"' in (tmp_path / "status.json").read_text()
