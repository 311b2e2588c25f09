"""Fig. 8's summary: mean ± std over seeds as every table has it (docs/metrics.md), the
population std; it was the sample std (``ddof=1``), 1.22 times larger with three seeds."""

import math

import pandas as pd
import pytest

from taskvec.experiments.ensemble import summarise_ensemble


def test_the_ensemble_std_is_the_population_std_over_seeds_and_none_for_one_seed():
    # two tasks, three seeds: the seeds' task-averaged accuracies are 0.2, 0.4 and 0.6
    scores = pd.DataFrame(
        [
            {"task": task, "seed": seed, "kind": "exemplars", "n": 5, "accuracy": accuracy}
            for seed, (a, b) in enumerate([(0.1, 0.3), (0.4, 0.4), (0.7, 0.5)], 1)
            for task, accuracy in (("a", a), ("b", b))
        ]
    )
    row = summarise_ensemble(scores).iloc[0]
    assert (row.kind, row.n) == ("exemplars", 5)
    assert row["mean"] == pytest.approx(0.4)
    assert row["std"] == pytest.approx(math.sqrt(0.08 / 3))  # ddof=0; ddof=1 gives 0.2
    one = summarise_ensemble(scores[scores.seed == 1]).iloc[0]
    assert one["mean"] == pytest.approx(0.2) and math.isnan(one["std"])
