"""A text-only model asked for image queries is told which model can read them."""

from __future__ import annotations

import pytest
from helpers.tinyllm import tiny_llm

from taskvec.errors import ConfigError
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.models.registry import DEFAULT_VLM
from taskvec.pipelines.evaluate import check_model_fits


def test_image_queries_on_a_text_model_name_a_model_that_reads_images():
    config = ExperimentConfig.create(model="tiny", tasks=["country_capital"], query="image")
    with pytest.raises(ConfigError, match=f"is text-only.*--model {DEFAULT_VLM}"):
        check_model_fits(tiny_llm("llama"), config)
