"""A named model that is an alias of another (``embedded-vlm`` loads ``embedded-vlm-gemma3``) runs
under the name it was asked by: ``taskvec analyze --model embedded-vlm`` was refused after the
load with "the options name model 'embedded-vlm', but the model given is 'embedded-vlm-gemma3'"."""

from __future__ import annotations

import pytest

from taskvec.config import DEFAULT_VLM
from taskvec.errors import ConfigError
from taskvec.models.registry import NAMED_MODELS, load_model, names_of
from taskvec.pipelines.analyze import AnalysisConfig, run_analysis


def test_an_alias_is_the_name_of_what_it_loads():
    for named in NAMED_MODELS.values():
        if named.alias_of is not None:
            assert load_model(named.name).name == named.alias_of and named.alias_of in NAMED_MODELS
    assert names_of(NAMED_MODELS[DEFAULT_VLM].alias_of) == (NAMED_MODELS[DEFAULT_VLM].alias_of, DEFAULT_VLM)


def test_options_may_name_the_model_given_by_an_alias_and_no_other():
    gemma3 = NAMED_MODELS[DEFAULT_VLM].alias_of
    config = AnalysisConfig.create(model=DEFAULT_VLM)
    assert config.named_after(gemma3, names_of(gemma3)).model == DEFAULT_VLM
    with pytest.raises(ConfigError, match="the options name model 'embedded-vlm', but the model given"):
        config.named_after("embedded-vlm-smollm2", names_of("embedded-vlm-smollm2"))


def test_an_analysis_of_the_default_vlm_by_its_alias_runs(tmp_path):
    result = run_analysis(
        out=tmp_path / "analysis",
        model=DEFAULT_VLM,
        tasks=["food_color"],
        specs=["text-icl"],
        prompts=2,
        lens_prompts=1,
        extraction_prompts=2,
        embeddings=["pca"],
    )
    assert result.folder.status()["state"] == "complete"
