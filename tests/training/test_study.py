"""nucel-study end to end on a tiny config: two arms at equal compute, one task, the baselines, the files it
writes, a rerun that trains nothing, and its refusals; plus the budget arithmetic."""

import json
import os

import pytest
import yaml
from conftest import tiny_study

from nucel.training.pretraining.config import load_config
from nucel.training.studies import budget
from nucel.training.studies import run as study


@pytest.mark.slow
def test_study_trains_arms_at_equal_compute_and_writes_its_report(tmp_path, capsys):
    config = tiny_study(tmp_path)
    record = study.main(["--config", config])
    out = tmp_path / "study"
    for name in ("study.md", "study.json", "study.png", "plan.json", "arms/electra.yaml", "arms/mlm.yaml"):
        assert (out / name).is_file(), name
    assert (out / "pretraining" / "electra" / "discriminator" / "model.safetensors").is_file()
    assert (out / "pretraining" / "mlm" / "mlm" / "model.safetensors").is_file()

    saved = json.loads((out / "study.json").read_text())
    arms = saved["arms"]
    assert set(arms) == {"electra", "mlm"} and saved["budget"] == {"kind": "tokens", "per_arm": 8 * 130 * 6}
    tokens = [arms[arm]["tokens"] for arm in arms]
    assert max(tokens) / min(tokens) - 1 <= 0.02 and saved["equal_compute_spread"] <= 0.02
    assert all(arms[arm]["steps"] == 6 and arms[arm]["tokens"] == 6 * 8 * 130 for arm in arms)
    assert arms["electra"]["flops"] > arms["mlm"]["flops"]  # ELECTRA also runs its generator on every token
    assert saved["pretraining_seeds"] == [42] and all(arms[arm]["pretraining_seeds"] == [42] for arm in arms)
    runs = saved["pretraining"]  # one run per arm, in pretraining/<arm>/ (no pretraining_seeds in the YAML)
    assert [(run["arm"], run["pretraining_seed"], run["directory"]) for run in runs] == [
        ("electra", 42, os.path.join("pretraining", "electra")), ("mlm", 42, os.path.join("pretraining", "mlm"))]
    assert all(run["curve"] and run["seconds"] > 0 for run in runs)

    rows = {(entry["row"]) for entry in saved["results"]}
    assert rows == {"electra-finetune", "electra-linear", "mlm-finetune", "mlm-linear", "random-init-finetune",
                    "onehot-cnn"}
    for entry in saved["results"]:
        assert len(entry["test"]["mcc"]["values"]) == 2  # both seeds
        (only,) = entry["cells"]  # one pretraining run per arm: one cell per row
        assert only["pretraining_seed"] == (42 if entry["arm"] else None)
        assert only["results"] == os.path.join("evaluation", "motif_task", entry["row"], "results.json")
        cell = json.loads((out / only["results"]).read_text())
        assert cell["config"]["seeds"] == [1, 2] and cell["config"]["max_steps"] == 6
        assert cell["learning_rate"]["chosen_by"]  # the fine-tuning default is recorded
        assert entry["pretraining_sd"] is None and entry["finetuning_sd"] is not None
    probe = json.loads((out / "evaluation" / "motif_task" / "mlm-linear" / "results.json").read_text())
    assert probe["config"]["probe"] == "linear" and probe["model_info"]["location"].endswith(os.path.join("mlm",
                                                                                                          "mlm"))
    random_init = json.loads((out / "evaluation" / "motif_task" / "random-init-finetune" / "results.json").read_text())
    assert random_init["model_info"]["kind"] == "random-init"
    table = (out / "study.md").read_text()
    for label in ("electra · fine-tune", "mlm · linear probe", "random-init · fine-tune", "one-hot CNN",
                  "| electra | 42 | electra | uniform | 6 |", "| mlm | 42 | mlm | uniform | 6 |",
                  "**Protocol**", "1 pretraining seed(s) x 2 fine-tuning seed(s) = 2 runs per cell"):
        assert label in table, label
    assert "pretraining sd / fine-tuning sd" not in table  # one pretraining seed: no spread across them
    assert record["results"] == saved["results"]

    # A rerun trains nothing: arms are finished, every cell is reused.
    capsys.readouterr()
    study.main(["--config", config])
    printed = capsys.readouterr().out
    assert "electra: pretraining finished (6 steps), reused" in printed and "mlm: pretraining finished" in printed
    assert printed.count("reusing ") == 6 and "training again" not in printed

    # Another budget in the same folder is refused: the arms would not have been planned alike.
    with pytest.raises(ValueError, match=r"plan.json: this study was planned with budget .*choose another"):
        study.main(["--config", tiny_study(tmp_path, budget={"tokens": 99_999})])


@pytest.mark.slow
def test_a_stopped_arm_resumes_from_its_checkpoint(tmp_path, monkeypatch, capsys):
    """The first arm stops after its step-3 checkpoint; the rerun resumes it there and finishes the study."""
    from nucel.training.pretraining import run as pretrain
    from nucel.training.pretraining.build import optimizer_step as real_step

    config = tiny_study(tmp_path, arms={"electra": {}}, baselines=[], evaluations=["finetune"])
    calls = {"n": 0}

    def stop_after_three(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(pretrain, "optimizer_step", stop_after_three)
    with pytest.raises(KeyboardInterrupt):
        study.main(["--config", config])
    monkeypatch.setattr(pretrain, "optimizer_step", real_step)
    capsys.readouterr()
    study.main(["--config", config])
    printed = capsys.readouterr().out
    assert "resuming from step-00000003" in printed
    saved = json.loads((tmp_path / "study" / "study.json").read_text())
    assert saved["arms"]["electra"]["steps"] == 6


@pytest.mark.slow
def test_budgets_become_steps(tmp_path):
    config = load_config(tiny_study(tmp_path) and str(tmp_path / "preset.yaml"),
                         [("fasta", [str(tmp_path / "genome.fa.gz")])])
    per_step = 8 * 130
    assert budget.plan_arm(config, "tokens", per_step * 10)["max_steps"] == 10
    flops = budget.plan_arm(config, "flops", 1e12)
    assert flops["max_steps"] == round(1e12 / (per_step * flops["flops_per_token"]))
    mlm = load_config(str(tmp_path / "preset.yaml"), [("fasta", [str(tmp_path / "genome.fa.gz")]),
                                                       ("objective", "mlm")])
    assert budget.plan_arm(mlm, "flops", 1e12)["max_steps"] > flops["max_steps"]  # no generator: more steps
    seconds = budget.plan_arm(config, "seconds", 5.0)
    assert seconds["calibrated_step_seconds"] > 0
    assert seconds["max_steps"] == max(1, round(5.0 / seconds["calibrated_step_seconds"]))


@pytest.mark.parametrize("change, message", [
    ({"budget": {"hours": 1}}, r"budget=\{'hours': 1\}: expected one of"),
    ({"budget": {"tokens": "lots"}}, r"budget.tokens='lots': expected a positive number"),
    ({"arms": {"electra": {"max_steps": 5}}}, r"arms.electra: \['max_steps'\] are set by the study"),
    ({"arms": {"bad name": {}}}, r"arms: 'bad name': expected a name"),
    ({"arms": {"electra": {"hidden_sise": 8}}}, r"arm electra: --hidden_sise: not a key"),
    ({"evaluations": ["finetune", "lora"]}, r"evaluations=.*expected a list of distinct values"),
    ({"tasks": ["/nonexistent/task"]}, r"/nonexistent/task"),
    ({"finetune": {"seeds": [1]}}, r"finetune: \['seeds'\] are set by the study"),
    ({"finetune": {"max_stepz": 3}}, r"finetune: .* are not valid finetune.py options"),
    ({"colour": "blue"}, r"unknown key\(s\) \['colour'\]"),
])
def test_bad_study_configs_are_refused_before_anything_is_written(tmp_path, change, message):
    config = tiny_study(tmp_path, **change)
    with pytest.raises(ValueError, match=message):
        study.main(["--config", config])
    assert not (tmp_path / "study").exists()


def test_yaml_1_1_exponents_are_read_as_numbers(tmp_path):
    from nucel.training.studies.config import read_study

    path = tiny_study(tmp_path)
    values = yaml.safe_load(open(path))
    values["budget"] = {"flops": "5e13"}  # YAML 1.1 reads 5e13 as a string
    open(path, "w").write(yaml.safe_dump(values))
    assert read_study(path).budget == 5e13


@pytest.mark.slow
def test_the_command_refuses_bad_input_with_one_line(tmp_path):
    import subprocess
    import sys

    from conftest import REPO_ROOT

    config = tiny_study(tmp_path, budget={"hours": 1})
    done = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "training", "study.py"), "--config", config],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [f"error: {config}: budget={{'hours': 1}}: expected one of "
                                                "{tokens: N}, {flops: N}, {seconds: N}"]


def test_the_readme_study_config_is_a_valid_study(monkeypatch):
    """training/configs/study-tiny.yaml (the README's study) reads, with every arm a valid pretraining config."""
    from conftest import REPO_ROOT

    from nucel.training.studies.config import read_study

    monkeypatch.chdir(REPO_ROOT)
    study_config = read_study(os.path.join("training", "configs", "study-tiny.yaml"))
    assert list(study_config.arms) == ["electra", "mlm", "electra-randommask"] and len(study_config.tasks) >= 1
    assert study_config.arm_config("electra-randommask", 10, 42).masking == "randommask"
    assert study_config.pretraining_seeds == [42] and not study_config.seed_folders  # tiny.yaml's seed, one run
    assert study_config.finetune == {"epochs": 20, "eval_steps": 50, "patience": 5}
