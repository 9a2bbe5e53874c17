"""Issue 10's classes of failure in pretraining, fine-tuning and the benchmark grid: no data loss or mixing
between runs, no code run from checkpoint folders, no silent wrong result, and one clear line (never a
traceback) for bad input."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import (
    REPO_ROOT,
    copy_run,
    motif_task,
    one_line_exit,
    planted_motif_genome,
    read_metrics,
    resume,
    run,
    write_fasta,
)

from nucel.training.finetuning import grid as benchmark
from nucel.training.finetuning import run as finetune
from nucel.training.pretraining import run as pretrain
from nucel.training.pretraining.config import load_config
from nucel.training.studies import run as study

CONFIGS = os.path.join(REPO_ROOT, "training", "configs")


# ------------------------------------------------------------------------------------------------- data loss and mixing
def test_a_refused_run_rebuilds_nothing(tmp_path, finished_run):
    output_dir = copy_run(finished_run, tmp_path)
    index = (output_dir / "genome-store" / "index.json").read_text()
    other = write_fasta(tmp_path / "other.fa.gz", [("chrZ", planted_motif_genome(20_000, seed=9))])
    with pytest.raises(ValueError, match="already holds checkpoints"):
        run(tmp_path, other, max_steps=4)
    with pytest.raises(ValueError, match="trained on a different genome"):
        resume(tmp_path, other)
    assert (output_dir / "genome-store" / "index.json").read_text() == index


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_save_total_limit_must_keep_a_checkpoint(limit):
    with pytest.raises(ValueError, match=f"save_total_limit={limit}: expected a positive integer"):
        load_config(os.path.join(CONFIGS, "tiny.yaml"), [("fasta", "g.fa"), ("save_total_limit", limit)])


@pytest.mark.slow
def test_benchmark_cells_are_unique_and_reuse_checks_the_data(tmp_path, tiny_export, capsys):
    first, second = tmp_path / "a" / "b_c", tmp_path / "a_b" / "c"  # one spelling as a file name: a_b_c
    for folder in (first, second):
        shutil.copytree(tiny_export / "discriminator", folder)
    task = motif_task(tmp_path / "task")
    cells = {benchmark.cell_directory("g", task, str(folder)) for folder in (first, second)}
    assert len(cells) == 2
    assert benchmark.cell_directory("g", task, str(first)) == benchmark.cell_directory("g", task, f"{first}/")
    with pytest.raises(ValueError, match="the same model twice"):
        benchmark.main(["--tasks", task, "--models", str(first), f"{first}/", "--output-dir", str(tmp_path / "g")])
    argv = ["--tasks", task, "--models", "onehot-cnn", "--output-dir", str(tmp_path / "g"), "--max-steps", "2",
            "--quiet"]
    benchmark.main(argv)
    motif_task(tmp_path / "task", sizes=(100, 64, 64))  # the training split changes, the command does not
    capsys.readouterr()
    benchmark.main(argv)
    out = capsys.readouterr().out
    assert "not reusing" in out and "the train split changed" in out
    results = json.loads(open(os.path.join(benchmark.cell_directory(str(tmp_path / "g"), task, "onehot-cnn"),
                                           "results.json")).read())
    assert results["data"]["train"]["rows"] == 100


# --------------------------------------------------------------------------------------------- no code from checkpoints
class Payload:
    """Unpickling this runs a shell command (creates `marker`): what a crafted checkpoint file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("name", ["random_states_0.pkl", "optimizer.bin", "custom_checkpoint_0.pkl"])
def test_a_crafted_pickle_in_a_checkpoint_is_refused_and_never_runs(tmp_path, fasta, finished_run, name):
    output_dir = copy_run(finished_run, tmp_path)
    checkpoint = output_dir / "checkpoints" / "step-00000002"
    marker = tmp_path / "pwned"
    if name == "custom_checkpoint_0.pkl":  # the legacy scheduler file is read only where scheduler.json is absent
        (checkpoint / "scheduler.json").unlink()
    torch.save({"state": Payload(marker)}, checkpoint / name)
    with pytest.raises(ValueError, match=f"{name}: refused: it holds Python objects other than tensors"):
        resume(tmp_path, fasta)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["custom_checkpoint_0.pkl", "custom_checkpoint_1.pkl", "pytorch_model.bin",
                                  "scaler.pt", "random_states_1.pkl"])
def test_a_file_the_package_does_not_write_is_refused_by_name_in_todays_layout(tmp_path, fasta, finished_run, name):
    """Planted beside a valid scheduler.json (today's layout): accelerate's load_state would unpickle these with
    weights_only=False (custom objects, RNG states) or look for them by name; the listing refuses them first."""
    output_dir = copy_run(finished_run, tmp_path)
    checkpoint = output_dir / "checkpoints" / "step-00000002"
    assert (checkpoint / "scheduler.json").is_file()
    marker = tmp_path / "pwned"
    torch.save({"state": Payload(marker)}, checkpoint / name)
    why = "the legacy schedule pickle beside scheduler.json" if name == "custom_checkpoint_0.pkl" else \
        "not a file nucel pretrain writes there"
    with pytest.raises(ValueError, match=f"{name}: refused: {why}"):
        resume(tmp_path, fasta)
    assert not marker.exists()


def test_checkpoints_hold_the_schedule_as_json_and_a_legacy_pickle_still_resumes(tmp_path, fasta, finished_run):
    output_dir = copy_run(finished_run, tmp_path)
    checkpoint = output_dir / "checkpoints" / "step-00000002"
    assert not list(checkpoint.glob("custom_checkpoint_*"))
    assert "last_epoch" in (checkpoint / "scheduler.json").read_text()
    # A checkpoint written before scheduler.json: the schedule in accelerate's pickle, read with weights_only=True.
    torch.save(json.loads((checkpoint / "scheduler.json").read_text()), checkpoint / "custom_checkpoint_0.pkl")
    (checkpoint / "scheduler.json").unlink()
    resume(tmp_path, fasta)
    assert [r["step"] for r in read_metrics(output_dir) if "loss" in r] == [1, 2, 3, 4]


@pytest.mark.slow
def test_finetuned_results_record_what_was_loaded(tmp_path, tiny_export):
    task = motif_task(tmp_path / "task")
    results = finetune.main(["--model", str(tiny_export / "discriminator"), "--task-dir", task,
                             "--output-dir", str(tmp_path / "ft"), "--max-steps", "2", "--quiet"])
    assert results["model_info"]["model_type"] == "nucel" and len(results["model_info"]["weights_sha256"]) == 64
    control = finetune.main(["--model", f"random-init:{tiny_export / 'discriminator'}", "--task-dir", task,
                             "--output-dir", str(tmp_path / "ri"), "--max-steps", "2", "--quiet"])
    assert "weights_sha256" not in control["model_info"]  # fresh weights: no checksum of weights never loaded


# ------------------------------------------------------------------------------------------------- silent wrong results
def test_numbers_in_scientific_notation_are_numbers():
    config = pretrain.parse_config(["--config", os.path.join(CONFIGS, "tiny.yaml"), "--fasta", "g.fa",
                                    "--learning-rate", "1e-3", "--mask-rate", "1e-1", "--initializer-range", "2e-2",
                                    "--max-steps", "1e3"])
    assert (config.learning_rate, config.mask_rate, config.max_steps) == (1e-3, 0.1, 1000)
    assert config.model_config().initializer_range == 0.02
    for key, value, expected in [("learning-rate", "fast", "a number"), ("max-steps", "2.5", "an integer"),
                                 ("hidden-size", "1e-3", "an integer"), ("bert-80-10-10", "maybe", "true or false")]:
        with pytest.raises(ValueError, match=rf"config (model\.)?{key.replace('-', '_')}=.*: expected {expected}"):
            pretrain.parse_config(["--config", os.path.join(CONFIGS, "tiny.yaml"), "--fasta", "g.fa",
                                   f"--{key}", value])


@pytest.mark.parametrize("overrides, message", [
    ([("vocab_size", "8")], "vocab_size=8"),
    ([("reverse_complement_prob", "5")], r"reverse_complement_prob=5.0: expected a probability in \[0, 1\]"),
    ([("mask_rate", "1.5")], r"mask_rate=1.5: expected a fraction in \(0, 1\)"),
    ([("masking", "randommask"), ("crop_length", "40"), ("randommask_min_span", "24")],
     r"spans up to \d+ tokens in 40-token crops mask \d+\.\d% of tokens"),
    ([("lr_scheduler", "linearr")], "lr_scheduler='linearr'"),
    ([("attn_implementation", "flash")], "attn_implementation='flash'"),
])
def test_values_that_would_train_another_recipe_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(os.path.join(CONFIGS, "tiny.yaml"), [("fasta", "g.fa"), *overrides])


@pytest.mark.slow
def test_resume_without_a_checkpoint_warns_and_a_missing_rng_state_is_refused(tmp_path, fasta, finished_run,
                                                                               capsys):
    run(tmp_path / "fresh", fasta, "--resume", max_steps=2, save_steps=2, eval_steps=2)
    assert "warning: --resume: " in capsys.readouterr().err
    output_dir = copy_run(finished_run, tmp_path / "copy")
    (output_dir / "checkpoints" / "step-00000002" / "random_states_0.pkl").unlink()
    with pytest.raises(ValueError, match="random_states_0.pkl: missing"):
        resume(tmp_path / "copy", fasta)


def test_an_empty_config_and_a_run_that_cannot_fit_are_refused_before_anything_is_written(tmp_path, fasta,
                                                                                         monkeypatch):
    empty = tmp_path / "empty.yaml"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="empty.yaml: the config file is empty"):
        pretrain.main(["--config", str(empty), "--fasta", fasta, "--output-dir", str(tmp_path / "out")])
    with pytest.raises(ValueError, match="--config: required"):
        pretrain.main(["--fasta", fasta, "--output-dir", str(tmp_path / "out")])
    from nucel.training.pretraining import compute

    monkeypatch.setattr(compute, "available_memory", lambda device: 8 * compute.GIB)
    with pytest.raises(ValueError, match=r"needs at least \d+\.\d GiB .* but cpu has 8.0 GiB available"):
        pretrain.main(["--config", os.path.join(CONFIGS, "nucel-93m.yaml"), "--fasta", fasta,
                       "--output-dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_memory_estimate_is_below_what_a_training_step_measured():
    """The refusal uses a lower bound: measured on 2 CPU cores, the published 512 x 22 ELECTRA at 1,026 tokens
    peaked at 4.1 GB (batch 1) and 9.7 GB (batch 4) of resident memory."""
    from nucel.training.pretraining.compute import memory_estimate

    for batch, measured in ((1, 4.1e9), (4, 9.7e9)):
        config = load_config(os.path.join(CONFIGS, "nucel-93m.yaml"), [
            ("fasta", "g.fa"), ("per_device_batch_size", str(batch)), ("global_batch_size", str(batch))])
        assert 0.6 * measured < sum(memory_estimate(config, "cpu", "no")) < measured


# ----------------------------------------------------------------------------------------------- one line, no traceback
@pytest.mark.slow
def test_a_half_written_metrics_line_is_tolerated_on_resume(tmp_path, fasta, finished_run):
    output_dir = copy_run(finished_run, tmp_path)
    with open(output_dir / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 3, "loss": 1.2')  # what a kill during a write leaves
    resume(tmp_path, fasta)
    assert [r["step"] for r in read_metrics(output_dir) if "loss" in r] == [1, 2, 3, 4]


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("objective: electra\nmodel:\n  hidden_size: [64\n  num_hidden_layers: 2\n")
    with pytest.raises(ValueError, match=r"bad.yaml:\d+: YAML syntax error"):
        load_config(str(path))


def test_flex_attention_cannot_train_on_cpu(tmp_path, fasta):
    with pytest.raises(ValueError, match="attn_implementation=flex_attention: PyTorch has no FlexAttention backward"):
        run(tmp_path, fasta, attn_implementation="flex_attention")


@pytest.mark.slow
def test_errors_under_accelerate_launch_are_one_line(tmp_path):
    launcher = os.path.join(os.path.dirname(sys.executable), "accelerate")
    done = subprocess.run([launcher, "launch", "--quiet", "--num_processes", "1", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no",
                           os.path.join(REPO_ROOT, "training", "pretrain.py"), "--config",
                           os.path.join(CONFIGS, "tiny.yaml"), "--fasta", str(tmp_path / "nowhere.fa"),
                           "--output-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and lines == [f"error: {tmp_path / 'nowhere.fa'}: FASTA file not found"], lines


# ----------------------------------------------------------------------------------------------------------- study YAML
@pytest.mark.parametrize("change, message", [
    ({"arms": None}, "arms=None: expected a value (required)"),
    ({"budget": {"tokens": float("inf")}}, "budget.tokens=inf: expected a positive number (finite)"),
    ({"budget": {"flops": float("nan")}}, "budget.flops=nan: expected a positive number (finite)"),
    ({"budget": {"seconds": -5}}, "budget.seconds=-5: expected a positive number (finite)"),
])
def test_a_study_without_arms_or_with_an_endless_budget_is_one_line(tmp_path, change, message):
    values = {"pretraining": os.path.join(REPO_ROOT, "training", "configs", "tiny.yaml"), "budget": {"tokens": 1000},
              "arms": {"electra": {}}, "tasks": [str(tmp_path / "task")], "output_dir": str(tmp_path / "study")}
    values.update(change)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({key: value for key, value in values.items() if value is not None}))
    assert one_line_exit(study.cli, ["--config", str(path)]) == f"error: {path}: {message}"
    assert not (tmp_path / "study").exists()
