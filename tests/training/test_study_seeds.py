"""nucel-study with several pretraining seeds, and the report's fairness statements: the `pretraining_seeds` key
and its refusals, the seed-<s>/ layout (a tiny study: two pretraining runs of one arm with different weights), both
spreads in study.md, the † of an under-trained cell and the Protocol line. The report tests build results.json
dicts by hand (no training)."""

import json
import os
import statistics

import pytest
import yaml
from conftest import tiny_study
from safetensors.torch import load_file

from nucel import run_records
from nucel.training.finetuning.metrics import aggregate
from nucel.training.studies import report
from nucel.training.studies import run as study
from nucel.training.studies.config import StudyConfig, read_study


# ----------------------------------------------------------------------------------------------------------- YAML
@pytest.mark.parametrize("seeds", [[], [3, 3], ["a"], [-1], [True], 3, None, [1.5]])
def test_bad_pretraining_seeds_are_refused_with_one_line(tmp_path, seeds):
    config = tiny_study(tmp_path, pretraining_seeds=seeds)
    with pytest.raises(SystemExit) as exited:
        study.cli(["--config", config])
    assert exited.value.code == (f"error: {config}: pretraining_seeds={seeds!r}: expected a list of distinct "
                                 "non-negative integers (each arm is pretrained once per seed)")
    assert not (tmp_path / "study").exists()


@pytest.mark.parametrize("change, where", [
    ({"arms": {"electra": {"seed": 3}}}, "arms.electra.seed"),
    ({"pretraining_overrides": {"seed": 3}}, "pretraining_overrides.seed"),
    ({"pretraining_overrides": {"seed": 3}, "pretraining_seeds": [1, 2]}, "pretraining_overrides.seed"),
])
def test_the_study_owns_the_pretraining_seed(tmp_path, change, where):
    config = tiny_study(tmp_path, **change)
    with pytest.raises(SystemExit) as exited:
        study.cli(["--config", config])
    assert exited.value.code == (f"error: {config}: {where}: set by the study, the same for every arm; list the "
                                 "pretraining seeds in `pretraining_seeds: [...]` (default: the preset's seed)")


def test_pretraining_seeds_choose_the_layout(tmp_path):
    without = read_study(tiny_study(tmp_path))
    assert without.pretraining_seeds == [42] and not without.seed_folders  # the preset's seed (42: the default)
    assert without.arm_directory("electra", 42) == str(tmp_path / "study" / "pretraining" / "electra")
    assert without.cell_directory("t/motif_task", "electra-finetune", 42) == os.path.join(
        "evaluation", "motif_task", "electra-finetune")
    assert without.arm_config("mlm", 5, 42).seed == 42

    seeded = read_study(tiny_study(tmp_path, pretraining_seeds=[7, 3]))
    assert seeded.pretraining_seeds == [7, 3] and seeded.seed_folders
    assert seeded.runs() == [("electra", 7), ("electra", 3), ("mlm", 7), ("mlm", 3)]
    assert seeded.arm_directory("mlm", 3) == str(tmp_path / "study" / "pretraining" / "mlm" / "seed-3")
    assert seeded.arm_config("mlm", 5, 3).seed == 3 and seeded.arm_config("mlm", 5, 3).output_dir.endswith("seed-3")
    assert seeded.cell_directory("t/motif_task", "mlm-linear", 3) == os.path.join(
        "evaluation", "motif_task", "mlm-linear", "pretraining-seed-3")
    assert seeded.cell_directory("t/motif_task", "onehot-cnn", None) == os.path.join(
        "evaluation", "motif_task", "onehot-cnn")
    rows = {row[0]: row[3] for row in study.cells(seeded)}
    assert list(rows["mlm-linear"]) == [7, 3] and rows["onehot-cnn"] == {None: "onehot-cnn"}
    assert rows["random-init-finetune"] == {None: f"random-init:{seeded.arm_directory('electra', 7)}"}


def test_a_study_folder_keeps_its_pretraining_layout(tmp_path):
    """plan.json remembers the layout: one run per arm (plans from before the key) or seed-<s>/ folders."""
    old = read_study(tiny_study(tmp_path))
    (tmp_path / "study").mkdir()
    recipes = {arm: {**study.recipe(old.arm_config(arm, 1, 42).to_dict()), "seed": 42,
                     "output_dir": old.arm_directory(arm, 42)} for arm in old.arms}
    plan = {"budget": study.budget_record(old), "arms": {arm: {"max_steps": 6, "tokens_per_step": 1040,
                                                               "flops_per_token": 1.0, "recipe": recipes[arm]}
                                                         for arm in old.arms}}
    (tmp_path / "study" / "plan.json").write_text(json.dumps(plan))  # written before pretraining_seeds existed
    assert study.make_plan(old)["arms"]["electra"]["max_steps"] == 6  # continues in place
    with pytest.raises(ValueError, match=r"plan.json: this study pretrained one run per arm in pretraining/<arm>/ "
                                         r"\(no `pretraining_seeds`\); choose another --output-dir"):
        study.make_plan(read_study(tiny_study(tmp_path, pretraining_seeds=[42, 43])))
    plan["seed_folders"], plan["pretraining_seeds"] = True, [42, 43]
    (tmp_path / "study" / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(ValueError, match=r"pretraining/<arm>/seed-<s>/ \(seeds \[42, 43\]\); give "
                                         r"`pretraining_seeds`"):
        study.make_plan(old)
    grown = study.make_plan(read_study(tiny_study(tmp_path, pretraining_seeds=[42, 43, 44])))  # seeds added later
    assert grown["pretraining_seeds"] == [42, 43, 44] and grown["arms"]["mlm"]["max_steps"] == 6


@pytest.mark.slow
def test_two_pretraining_seeds_train_two_runs_and_report_both_spreads(tmp_path, capsys):
    config = tiny_study(tmp_path, arms={"electra": {}}, pretraining_seeds=[1, 2], evaluations=["finetune"],
                        baselines=["onehot-cnn"])
    record = study.main(["--config", config])
    out = tmp_path / "study"
    plan = json.loads((out / "plan.json").read_text())
    assert list(plan["arms"]) == ["electra"] and plan["arms"]["electra"]["max_steps"] == 6  # one plan per arm
    weights = {}
    for seed in (1, 2):
        run = out / "pretraining" / "electra" / f"seed-{seed}"
        assert json.loads((run / "pretraining_summary.json").read_text())["config"]["seed"] == seed
        assert yaml.safe_load((out / "arms" / "electra" / f"seed-{seed}.yaml").read_text())["seed"] == seed
        weights[seed] = load_file(str(run / "discriminator" / "model.safetensors"))
        assert (out / "evaluation" / "motif_task" / "electra-finetune" / f"pretraining-seed-{seed}"
                / "results.json").is_file()
    assert any(not weights[1][name].equal(weights[2][name]) for name in weights[1])  # two different runs
    assert [(run["arm"], run["pretraining_seed"], run["steps"]) for run in record["pretraining"]] == [
        ("electra", 1, 6), ("electra", 2, 6)]

    entry = next(entry for entry in record["results"] if entry["row"] == "electra-finetune")
    assert [cell["pretraining_seed"] for cell in entry["cells"]] == [1, 2]
    assert entry["test"]["mcc"]["n"] == 4 and entry["pretraining_sd"] is not None
    assert entry["test"]["mcc"]["values"] == [value for cell in entry["cells"]
                                              for value in cell["test"]["mcc"]["values"]]
    baseline = next(entry for entry in record["results"] if entry["row"] == "onehot-cnn")
    assert [cell["pretraining_seed"] for cell in baseline["cells"]] == [None] and baseline["test"]["mcc"]["n"] == 2
    table = (out / "study.md").read_text()
    assert "arm rows: 2 pretraining seed(s) x 2 fine-tuning seed(s) = 4 runs per cell" in table
    assert "baseline rows (nothing pretrained): 2 fine-tuning seed(s)" in table
    assert "| electra | 1 | electra | uniform | 6 |" in table and "| electra | 2 | electra | uniform | 6 |" in table
    assert "**pretraining sd / fine-tuning sd**" in table
    spread_line = next(line for line in table.splitlines() if line.startswith("| electra · fine-tune |")
                       and " / " in line)
    pre = statistics.stdev(cell["test"]["mcc"]["mean"] for cell in entry["cells"])
    assert f"{pre * 100:.2f} / " in spread_line

    capsys.readouterr()  # a rerun trains nothing
    study.main(["--config", config])
    printed = capsys.readouterr().out
    assert "electra seed 1: pretraining finished (6 steps), reused" in printed
    assert printed.count("reusing ") == 3 and "training again" not in printed


# ---------------------------------------------------------------------------------------- report, hand-built cells
PROTOCOL = {"max_steps": 600, "max_epochs": None, "patience": 5, "min_delta": 0.0, "eval_steps": 50,
            "batch_size": 32, "warmup_steps": 50, "learning_rate": "dev search (--lr auto)"}
SEARCH = {"chosen_by": "dev search (--lr auto)", "candidates": [6e-5, 1.8e-4, 5.4e-4], "value": 1.8e-4}


def cell(values, still_improving=(), protocol=PROTOCOL, learning_rate=SEARCH, stopped=True):
    """A results.json of one cell: fine-tuning seeds 1, 2, ... with these test MCCs; `still_improving`: the seeds
    that reached their maximum while dev was still improving; stopped=False: written before stopping was recorded."""
    records = []
    for seed, value in enumerate(values, start=1):
        record = {"seed": seed, "test": {"mcc": value, "accuracy": 0.5 + value / 2}}
        if stopped:
            improving = seed in still_improving
            record["stopping"] = {"steps": 600 if improving else 350, "max_steps": 600, "evaluations": 12,
                                  "patience": 5, "min_delta": 0.0, "evaluations_since_best": 1 if improving else 5,
                                  "stopped": "maximum" if improving else "early", "still_improving": improving}
        records.append(record)
    results = {"primary_metric": "mcc", "seeds": records, "test": aggregate([r["test"] for r in records]),
               "learning_rate": dict(learning_rate),
               "config": {"batch_size": 32, "warmup_steps": 50, "eval_steps": 50, "max_steps": 600, "epochs": None}}
    if protocol is not None:
        results["protocol"] = dict(protocol)
    return results


@pytest.fixture
def preset(tmp_path):
    path = tmp_path / "preset.yaml"
    path.write_text(yaml.safe_dump({"seed": 11, "max_steps": 10}))
    return str(path)


def hand_built(tmp_path, preset, pretraining_seeds=(7, 8), change=None):
    """A two-arm, two-task study (arms fine-tuned, one-hot CNN baseline) and its hand-built cells; `change`:
    {(task name, row, pretraining seed): results.json} replacing cells. Returns (study, results, rows)."""
    output = tmp_path / "study"
    output.mkdir(exist_ok=True)
    config = StudyConfig(path="study.yaml", pretraining=preset, budget_kind="tokens", budget=6240.0,
                         arms={"electra": {}, "mlm": {"objective": "mlm"}}, tasks=["tasks/motif_a", "tasks/motif_b"],
                         seeds=[1, 2], evaluations=["finetune"], baselines=["onehot-cnn"], output_dir=str(output),
                         pretraining_seeds=list(pretraining_seeds) if pretraining_seeds else None)
    rows = study.cells(config)
    base = {"electra-finetune": 0.50, "mlm-finetune": 0.40, "onehot-cnn": 0.30}
    results = {}
    for task in config.tasks:
        for row in rows:
            results[(task, row[0])] = {}
            for index, seed in enumerate(row[3]):
                value = base[row[0]] + 0.2 * index  # each pretraining seed 0.2 higher; fine-tuning seeds 0.1 apart
                made = cell([value, value + 0.1])
                results[(task, row[0])][seed] = (change or {}).get((os.path.basename(task), row[0], seed), made)
    return config, results, rows


def write(config, results, rows):
    compute = {(arm, seed): {"objective": "mlm" if arm == "mlm" else "electra", "masking": "uniform", "seed": seed,
                             "steps": 6, "tokens": 6240, "flops": 1.0e9, "seconds": 3.0, "validation": {},
                             "curve": [{"step": 6, "tokens": 6240, "flops": 1.0e9, "seconds": 3.0,
                                        "masked_token_loss": 1.3}]}
               for arm, seed in config.runs()}
    plan = {"arms": {arm: {"max_steps": 6, "tokens_per_step": 1040, "flops_per_token": 1.0e5, "recipe": {}}
                     for arm in config.arms}}
    record = report.write_report(config, plan, compute, results, rows)
    return (os.path.join(config.output_dir, "study.md"), record)


def table_rows(markdown):
    """{label: [cells]} of the results table (the first table after '## Downstream')."""
    lines = markdown.split("## Downstream", 1)[1].splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("| model |"))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        label, *cells = [part.strip() for part in line.strip("|").split("|")]
        rows[label] = cells
    return rows


def test_both_spreads_and_the_seed_counts_are_reported(tmp_path, preset):
    config, results, rows = hand_built(tmp_path, preset)
    path, record = write(config, results, rows)  # prints study.md (pytest -s shows it)
    markdown = open(path, encoding="utf-8").read()
    assert ("mean ± sd over every run of a row (arm rows: 2 pretraining seed(s) x 2 fine-tuning seed(s) = 4 runs per "
            "cell; baseline rows (nothing pretrained): 2 fine-tuning seed(s))") in markdown
    cells = table_rows(markdown)
    pooled = [0.5, 0.6, 0.7, 0.8]
    expected = f"{statistics.fmean(pooled) * 100:.2f} ± {statistics.stdev(pooled) * 100:.2f}"
    assert cells["electra · fine-tune"] == [expected, expected, "65.00"]
    assert cells["one-hot CNN"][0] == "35.00 ± 7.07"
    # the spread table: pretraining sd = sd(0.55, 0.75); fine-tuning sd = sd(x, x + 0.1), the same for every run
    assert "| model | motif_a | motif_b | mean |" in markdown.split("**pretraining sd / fine-tuning sd**")[1]
    assert "| electra · fine-tune | 14.14 / 7.07 | 14.14 / 7.07 | 14.14 / 7.07 |" in markdown
    assert "one-hot CNN | 35" not in markdown.split("**pretraining sd / fine-tuning sd**")[1]  # no baseline there
    saved = json.loads((tmp_path / "study" / "study.json").read_text())
    entry = next(e for e in saved["results"] if e["row"] == "mlm-finetune" and e["task"] == "motif_b")
    assert [c["pretraining_seed"] for c in entry["cells"]] == [7, 8]
    assert [c["test"]["mcc"]["mean"] for c in entry["cells"]] == pytest.approx([0.45, 0.65])
    assert entry["cells"][1]["results"] == os.path.join("evaluation", "motif_b", "mlm-finetune", "pretraining-seed-8",
                                                        "results.json")
    assert entry["pretraining_sd"] == pytest.approx(statistics.stdev([0.45, 0.65]))
    assert entry["finetuning_sd"] == pytest.approx(statistics.stdev([0.4, 0.5]))
    assert saved["pretraining_seeds"] == [7, 8] and len(saved["pretraining"]) == 4
    assert "| mlm | 8 | mlm | uniform | 6 |" in markdown
    assert (tmp_path / "study" / "study.png").is_file() and record["results"] == saved["results"]


def test_the_dagger_marks_exactly_the_under_trained_cells(tmp_path, preset):
    improving = cell([0.62, 0.7], still_improving=[2])
    config, results, rows = hand_built(tmp_path, preset, change={("motif_b", "mlm-finetune", 8): improving})
    path, record = write(config, results, rows)
    markdown = open(path, encoding="utf-8").read()
    cells = table_rows(markdown)
    marked = [(label, index) for label, row in cells.items() for index, text in enumerate(row)
              if run_records.UNDER_TRAINED_MARK in text]
    assert marked == [("mlm · fine-tune", 1)]  # motif_b only; the row's mean and every other cell unmarked
    assert markdown.count(run_records.UNDER_TRAINED_MARK) == 2  # that cell and the note
    assert run_records.UNDER_TRAINED_NOTE in markdown
    assert markdown.index(run_records.UNDER_TRAINED_NOTE) > markdown.index("| mlm · fine-tune |")
    by_key = {(e["task"], e["row"]): e for e in record["results"]}
    assert by_key[("motif_b", "mlm-finetune")]["under_trained"] is True
    assert by_key[("motif_b", "mlm-finetune")]["under_trained_seeds"] == [{"pretraining_seed": 8, "seed": 2}]
    assert [c["under_trained_seeds"] for c in by_key[("motif_b", "mlm-finetune")]["cells"]] == [[], [2]]
    assert all(not e["under_trained"] and e["under_trained_seeds"] == [] for key, e in by_key.items()
               if key != ("motif_b", "mlm-finetune"))

    # A baseline cell (no pretraining seed) is marked the same way; cells without a stopping record never are.
    config, results, rows = hand_built(tmp_path, preset, change={
        ("motif_a", "onehot-cnn", None): cell([0.3, 0.4], still_improving=[1]),
        ("motif_b", "electra-finetune", 7): cell([0.5, 0.6], stopped=False, protocol=None)})
    path, record = write(config, results, rows)
    cells = table_rows(open(path, encoding="utf-8").read())
    assert [(label, index) for label, row in cells.items() for index, text in enumerate(row)
            if run_records.UNDER_TRAINED_MARK in text] == [("one-hot CNN", 0)]
    entry = next(e for e in record["results"] if e["row"] == "onehot-cnn" and e["task"] == "motif_a")
    assert entry["under_trained_seeds"] == [{"pretraining_seed": None, "seed": 1}]


def test_no_under_trained_cell_no_dagger_and_no_note(tmp_path, preset):
    config, results, rows = hand_built(tmp_path, preset, pretraining_seeds=None)  # the single-run layout
    assert config.pretraining_seeds == [11] and not config.seed_folders  # the preset's own seed
    path, record = write(config, results, rows)
    markdown = open(path, encoding="utf-8").read()
    assert run_records.UNDER_TRAINED_MARK not in markdown and run_records.UNDER_TRAINED_NOTE not in markdown
    assert "pretraining sd / fine-tuning sd" not in markdown  # one pretraining seed: no spread across them
    assert "arm rows: 1 pretraining seed(s) x 2 fine-tuning seed(s) = 2 runs per cell" in markdown
    assert record["results"][0]["cells"][0]["results"] == os.path.join("evaluation", "motif_a", "electra-finetune",
                                                                       "results.json")


def protocol_of(tmp_path, preset, change=None, **overrides):
    config, results, rows = hand_built(tmp_path, preset, change=change)
    if overrides:
        for cells in results.values():
            for key in list(cells):
                cells[key] = cell([0.5, 0.6], **overrides)
    return report.protocol_lines(config, results, rows)


def test_the_protocol_line_states_how_every_row_was_tuned(tmp_path, preset):
    (line,) = protocol_of(tmp_path, preset)
    assert line == ("**Protocol** (read from every cell's results.json; the study gives every cell the same "
                    "`finetune:` options): learning rate: --lr auto for every row: the best on dev of 3 candidates "
                    "around each model's default (first fine-tuning seed; test never scored), then every seed with "
                    "it; batch 32; warmup 50 steps; dev evaluated every 50 steps; training stops after 5 dev "
                    "evaluations without improvement (min delta 0.0) or at 600 steps; 2 fine-tuning seed(s) per cell.")

    width = {"chosen_by": "width rule: 3e-05 x 768 / hidden_size 64", "value": 3.6e-4}
    (line,) = protocol_of(tmp_path, preset, learning_rate=width,
                          protocol={**PROTOCOL, "learning_rate": "default rule, no search", "patience": 0})
    assert "learning rate: no search, for every row: width rule: 3e-05 x 768 / hidden_size 64 = 0.00036;" in line
    assert "no early stopping: a fixed budget of 600 steps" in line

    (line,) = protocol_of(tmp_path, preset, protocol=None, stopped=False)  # results.json from before `protocol`
    assert "batch 32; warmup 50 steps; dev evaluated every 50 steps; a fixed budget of 600 steps (these " \
           "results.json files predate early stopping)" in line


def test_rows_trained_differently_get_a_warning(tmp_path, preset):
    head = {"chosen_by": "head default (its weights start from scratch)", "value": 1e-3}
    line, *warnings = protocol_of(tmp_path, preset, change={
        ("motif_a", "onehot-cnn", None): cell([0.3, 0.4], learning_rate=head,
                                              protocol={**PROTOCOL, "learning_rate": "default rule, no search"}),
        ("motif_b", "mlm-finetune", 8): cell([0.4, 0.5], protocol={**PROTOCOL, "batch_size": 16})})
    assert "learning rate: searched (--lr auto) for some rows only" in line and "batch 32 / 16;" in line
    assert warnings == [
        "**Warning:** rows of motif_b differ in batch size: 32 (electra · fine-tune, mlm · fine-tune (pretraining "
        "seed 7), one-hot CNN); 16 (mlm · fine-tune (pretraining seed 8)). A cell reused from an older command? "
        "Delete its folder under evaluation/ and rerun.",
        "**Warning:** rows of motif_a were not tuned alike: the learning rate was searched on dev (--lr auto) for "
        "electra · fine-tune, mlm · fine-tune but not for one-hot CNN."]
