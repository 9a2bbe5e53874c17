"""Fair comparisons (Tang & Koo): every model trained to convergence on dev by one rule, under-trained cells marked.

A planted-motif task that a tiny model learns in a few hundred steps: a fixed 6-step budget stops far below
convergence; early stopping keeps training until dev stops improving, for a pretrained encoder, random-init and
the one-hot CNN alike, and the † mark appears exactly when a seed reached its maximum while dev still improved.
"""

import json
import os

import pytest
from conftest import motif_task

from nucel.run_records import UNDER_TRAINED_MARK, UNDER_TRAINED_NOTE, mark
from nucel.training.finetuning import grid as benchmark
from nucel.training.finetuning.stopping import (
    DEFAULT_PATIENCE,
    evaluations_without_improvement,
    protocol_differences,
    stopping_record,
)

# --------------------------------------------------------------------------------------------- the rule itself


@pytest.mark.parametrize("values, min_delta, expected", [
    ([0.1, 0.2, 0.3], 0.0, 0),
    ([0.1, 0.3, 0.2, 0.25], 0.0, 2),
    ([0.5, 0.5, 0.5], 0.0, 2),  # equal is not better
    ([0.1, 0.12, 0.13], 0.05, 2),  # improvements smaller than min_delta do not count ...
    ([0.1, 0.12, 0.18], 0.05, 0),  # ... but the best moves on them, as in transformers' EarlyStoppingCallback
    ([0.4], 0.0, 0),
])
def test_evaluations_without_improvement_counts_like_early_stopping(values, min_delta, expected):
    assert evaluations_without_improvement(values, min_delta) == expected


def test_stopping_record_says_how_a_run_ended():
    early = stopping_record([0.2, 0.5, 0.4, 0.45, 0.3], steps=50, max_steps=1000, patience=3, min_delta=0.0)
    assert early["stopped"] == "early" and not early["still_improving"] and early["evaluations_since_best"] == 3
    rising = stopping_record([0.2, 0.3, 0.4], steps=30, max_steps=30, patience=3, min_delta=0.0)
    assert rising["stopped"] == "maximum" and rising["still_improving"]
    # reached the maximum after a plateau as long as the patience: converged, only the maximum came first
    flat = stopping_record([0.5, 0.4, 0.4, 0.4], steps=40, max_steps=40, patience=3, min_delta=0.0)
    assert flat["stopped"] == "maximum" and not flat["still_improving"]
    # no early stopping (a fixed budget): judged with the default patience
    fixed = [0.1] + [0.5] + [0.4] * (DEFAULT_PATIENCE - 1)
    assert stopping_record(fixed, 60, 60, patience=0, min_delta=0.0)["still_improving"]
    assert not stopping_record(fixed + [0.4], 70, 70, patience=0, min_delta=0.0)["still_improving"]


def test_protocol_differences_name_the_field_and_the_models():
    same = {"max_steps": 100, "patience": 5, "min_delta": 0.0, "eval_steps": 10, "batch_size": 32,
            "warmup_steps": 10, "learning_rate": "dev search (--lr auto)"}
    assert protocol_differences({"a": {"protocol": same}, "b": {"protocol": dict(same)}}) == []
    lines = protocol_differences({"a": {"protocol": same}, "cnn": {"protocol": {**same, "patience": 0}},
                                  "old": {}})
    assert lines[0] == "no recorded protocol (an older run): old"
    assert lines[1] == "patience differs: 5 (a); 0 (cnn)"


# --------------------------------------------------------------------------------------------- real training
MODELS = ("discriminator", "random-init:discriminator", "onehot-cnn")
SHARED = ["--lr", "1e-3", "--warmup-steps", "2", "--batch-size", "32", "--seeds", "1", "--quiet"]


def grid(tmp_path, tiny_export, task, name, *budget):
    models = [model.replace("discriminator", str(tiny_export / "discriminator")) for model in MODELS]
    output = tmp_path / name
    table = benchmark.main(["--tasks", task, "--models", *models, "--output-dir", str(output), *SHARED, *budget])
    cells = {}
    for model, given in zip(MODELS, models):
        with open(os.path.join(benchmark.cell_directory(str(output), task, given), "results.json")) as handle:
            cells[model] = json.load(handle)
    return table, cells


@pytest.fixture(scope="module")
def planted(tmp_path_factory, tiny_export):
    tmp = tmp_path_factory.mktemp("fair")
    task = motif_task(tmp / "task", sizes=(320, 96, 96))
    short = grid(tmp, tiny_export, task, "short", "--max-steps", "6", "--eval-steps", "2")
    converged = grid(tmp, tiny_export, task, "converged", "--max-steps", "3000", "--eval-steps", "10",
                     "--patience", "4")
    return short, converged


@pytest.mark.slow  # the planted fixture trains 6 grid cells (~30 s on 2 cores)
def test_early_stopping_trains_every_model_until_dev_stops_improving(planted):
    (_, short), (_, converged) = planted
    for model in MODELS:
        fixed, trained = short[model]["seeds"][0], converged[model]["seeds"][0]
        stopping = trained["stopping"]
        assert stopping["stopped"] == "early" and not stopping["still_improving"], model
        assert fixed["steps"] == 6 < trained["steps"] < 3000, model
        curve = [entry["mcc"] for entry in trained["dev_history"]]
        best = max(curve)
        # the rule fired: the last `patience` evaluations never beat the best before them
        assert len(curve) > 4 and max(curve[-4:]) <= max(curve[:-4]), (model, curve)
        assert stopping["evaluations_since_best"] == 4 and trained["dev"]["mcc"] == pytest.approx(best, abs=1e-6)
        # the short budget stopped far below convergence
        assert best > fixed["dev"]["mcc"] + 0.2, (model, best, fixed["dev"]["mcc"])
        assert converged[model]["protocol"]["patience"] == 4 and short[model]["protocol"]["patience"] == 5


@pytest.mark.slow  # the planted fixture trains 6 grid cells (~30 s on 2 cores)
def test_the_dagger_marks_exactly_the_cells_stopped_while_dev_improved(planted):
    for table, cells in planted:
        for model, results in cells.items():
            record = results["seeds"][0]
            curve = [entry["mcc"] for entry in record["dev_history"]]
            patience = results["protocol"]["patience"]
            waiting = evaluations_without_improvement(curve, 0.0)
            expected = record["steps"] == results["protocol"]["max_steps"] and waiting < patience
            assert record["stopping"]["still_improving"] is expected, (model, curve)
            assert (mark(results) == UNDER_TRAINED_MARK) is expected
        rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| model")]
        marked = [model for model, results in cells.items() if mark(results)]
        assert len(rows) == len(MODELS)
        assert sum(line.count(UNDER_TRAINED_MARK) for line in rows) == len(marked)
        assert (UNDER_TRAINED_NOTE in table) == bool(marked)
        assert "every model trained alike" in table and "not trained alike" not in table
    (short_table, short), (converged_table, converged) = planted
    # 6 steps: 3 evaluations, all below the patience; 3000 steps: every model stopped on its own
    assert all(mark(results) for results in short.values()) and UNDER_TRAINED_NOTE in short_table
    assert not any(mark(results) for results in converged.values()) and UNDER_TRAINED_MARK not in converged_table


@pytest.mark.slow  # the planted fixture trains 6 grid cells (~30 s on 2 cores)
def test_model_cards_mark_under_trained_rows_and_say_how_rows_were_trained(planted):
    from nucel.hub_cards.card import _evaluation_section

    (_, short), (_, converged) = planted
    section = _evaluation_section([short["discriminator"]], baselines=[short["onehot-cnn"]])
    rows = [line for line in section.splitlines()
            if line.startswith("| **this model**") or line.startswith("| baseline: one-hot CNN")]
    assert len(rows) == 2 and all(UNDER_TRAINED_MARK in row for row in rows) and UNDER_TRAINED_NOTE in section
    section = _evaluation_section([converged["discriminator"]], baselines=[converged["onehot-cnn"]])
    assert UNDER_TRAINED_MARK not in section and "Every row trained until dev stopped improving" in section
    fixed = {**converged["onehot-cnn"], "protocol": {**converged["onehot-cnn"]["protocol"], "patience": 0}}
    assert "a gap between rows may be budget" in _evaluation_section([converged["discriminator"]], baselines=[fixed])
