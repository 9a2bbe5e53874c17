"""training/finetune.py: Trainer fine-tuning, baselines, probes, LoRA, results and predictions, bad input."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, SHARED_DATA, motif_rows, motif_task, write_task
from sklearn import metrics as sk
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from nucel.files import file_sha256
from nucel.training.finetuning import run as finetune
from nucel.training.finetuning.baselines import (
    FrozenEncoderProbe,
    SequenceCNNConfig,
    SequenceCNNForSequenceClassification,
)
from nucel.training.finetuning.metrics import aggregate, score
from nucel.training.finetuning.models import build_task_model, build_tokenizer, resolve_model

QUICK = ["--max-steps", "24", "--eval-steps", "6", "--warmup-steps", "2", "--batch-size", "32", "--quiet"]


def run(tmp_path, model, task_dir, *extra, name="out"):
    output = tmp_path / name
    results = finetune.main(["--model", str(model), "--task-dir", str(task_dir), "--output-dir", str(output),
                             *QUICK, *extra])
    return results, output


def read_predictions(output):
    with open(output / "predictions.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def classified(tmp_path_factory, tiny_export):
    """Full fine-tuning of the tiny discriminator on the motif task, two seeds."""
    tmp = tmp_path_factory.mktemp("classified")
    task = motif_task(tmp / "task")
    results, output = run(tmp, tiny_export / "discriminator", task, "--lr", "1e-3", "--seeds", "1", "2",
                          "--max-steps", "120", "--eval-steps", "24")
    return results, output, task


@pytest.mark.slow
def test_results_json_records_config_data_and_versions(classified):
    results, output, task = classified
    saved = json.loads((output / "results.json").read_text())
    assert saved["task"] == "task" and saved["label_type"] == "multi-class" and saved["primary_metric"] == "mcc"
    assert saved["config"]["lr"] == 1e-3 and saved["config"]["seeds"] == [1, 2] and saved["config"]["max_steps"] == 120
    assert {split: d["rows"] for split, d in saved["data"].items()} == {"train": 192, "dev": 64, "test": 64}
    assert saved["data"]["train"]["sha256"] == file_sha256(os.path.join(task, "train.csv.gz"))
    assert saved["versions"]["transformers"] and saved["versions"]["torch"]
    assert saved["model_info"]["kind"] == "pretrained" and len(saved["model_info"]["weights_sha256"]) == 64
    assert saved["model_info"]["trainable_parameters"] == saved["model_info"]["parameters"]
    assert not (output / "checkpoints").exists()  # scratch checkpoints removed once the best one is saved


@pytest.mark.slow
def test_metrics_equal_sklearn_on_saved_predictions(classified):
    results, output, _ = classified
    rows = read_predictions(output)
    for record in results["seeds"]:
        mine = [r for r in rows if int(r["seed"]) == record["seed"]]
        assert len(mine) == 64
        truth, predicted = [r["label"] for r in mine], [r["prediction"] for r in mine]
        assert record["test"]["mcc"] == pytest.approx(sk.matthews_corrcoef(truth, predicted), abs=1e-12)
        assert record["test"]["accuracy"] == pytest.approx(sk.accuracy_score(truth, predicted), abs=1e-12)
        assert record["test"]["f1"] == pytest.approx(sk.f1_score(truth, predicted, average="macro"), abs=1e-12)
        scores = np.array([[float(r["score_0"]), float(r["score_1"])] for r in mine])
        np.testing.assert_allclose(scores.sum(1), 1.0, atol=1e-5)
        assert [str(i) for i in scores.argmax(1)] == predicted


@pytest.mark.slow
def test_best_dev_checkpoint_is_the_one_scored(classified):
    results, _, _ = classified
    for record in results["seeds"]:
        history = record["dev_history"]
        assert [h["step"] for h in history] == [24, 48, 72, 96, 120]
        best = max(history, key=lambda h: h["mcc"])
        assert record["best_step"] == best["step"]
        # dev re-scored with the model loaded at the end equals what was logged at the best step
        assert record["dev"]["mcc"] == pytest.approx(best["mcc"], abs=1e-9)


@pytest.mark.slow
def test_seeds_aggregate_mean_and_sd(classified):
    results, _, _ = classified
    values = [record["test"]["mcc"] for record in results["seeds"]]
    assert results["test"]["mcc"]["values"] == values
    assert results["test"]["mcc"]["mean"] == pytest.approx(np.mean(values))
    assert results["test"]["mcc"]["sd"] == pytest.approx(np.std(values, ddof=1))
    assert results["test"]["mcc"]["n"] == 2
    assert aggregate([{"mcc": 0.5}])["mcc"]["sd"] is None  # one seed: no spread to report


@pytest.mark.slow
def test_saved_model_reproduces_the_best_seeds_predictions(classified):
    """model/ is the best-dev seed's best checkpoint, loadable by the Auto classes (remote code)."""
    results, output, task = classified
    best = results["saved_model"]["seed"]
    assert best == max(results["seeds"], key=lambda r: r["dev"]["mcc"])["seed"]
    model = AutoModelForSequenceClassification.from_pretrained(output / "model", trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(output / "model", trust_remote_code=True)
    assert model.config.id2label == {0: "0", 1: "1"} and model.config.classifier_pooling == "mean"
    rows = [r for r in read_predictions(output) if int(r["seed"]) == best]
    batch = tokenizer([r["sequence"] for r in rows], return_tensors="pt", padding=True)
    with torch.no_grad():
        probabilities = torch.softmax(model(**batch).logits, -1).numpy()
    np.testing.assert_allclose(probabilities[:, 1], [float(r["score_1"]) for r in rows], atol=1e-4)


@pytest.mark.slow
def test_fine_tuning_learns_the_planted_motif(classified):
    results, _, _ = classified
    assert results["test"]["mcc"]["mean"] > 0.5


@pytest.mark.slow
@pytest.mark.parametrize("label_type, primary", [("multi-label", "mcc"), ("regression", "pearson")])
def test_multi_label_and_regression_tasks(tmp_path, tiny_export, label_type, primary):
    task = motif_task(tmp_path / "task", label_type)
    results, output = run(tmp_path, tiny_export / "discriminator", task, "--lr", "1e-3")
    assert results["label_type"] == label_type and results["primary_metric"] == primary
    rows = read_predictions(output)
    labels = np.array([[float(x) for x in r["label"].split(";")] for r in rows]) if label_type == "regression" \
        else None
    if label_type == "regression":
        predicted = np.array([float(r["prediction"]) for r in rows])
        assert results["test"]["mse"]["mean"] == pytest.approx(np.mean((labels[:, 0] - predicted) ** 2), rel=1e-4)
        assert set(results["test"]) == {"pearson", "spearman", "mse"}
        assert results["test"]["pearson"]["mean"] > 0.5  # the motif count is learnable in a few steps
    else:
        names = results["label_names"]
        truth = np.array([[name in r["label"].split(";") for name in names] for r in rows])
        predicted = np.array([[name in r["prediction"].split(";") for name in names] for r in rows])
        assert results["test"]["mcc"]["mean"] == pytest.approx(sk.matthews_corrcoef(truth.ravel(), predicted.ravel()))
        assert results["test"]["accuracy"]["mean"] == pytest.approx(sk.accuracy_score(truth, predicted))
    config = json.loads((output / "model" / "config.json").read_text())
    assert config["problem_type"] == {"multi-label": "multi_label_classification", "regression": "regression"}[
        label_type]


@pytest.mark.slow
def test_onehot_cnn_on_prom_core_tata(tmp_path):
    """The one-hot CNN baseline on the real GUE task: an easy task for a CNN, MCC > 0.3 in two epochs."""
    results = finetune.main(["--model", "onehot-cnn", "--task-dir", f"{SHARED_DATA}/gue/prom_core_tata",
                             "--output-dir", str(tmp_path / "cnn"), "--epochs", "2", "--quiet"])
    assert results["config"]["lr"] == finetune.HEAD_LEARNING_RATE
    assert results["model_info"]["class"] == "SequenceCNNForSequenceClassification"
    assert results["test"]["mcc"]["mean"] > 0.3
    reloaded = SequenceCNNForSequenceClassification.from_pretrained(tmp_path / "cnn" / "model")
    assert reloaded.config.num_labels == 2


def test_cnn_ignores_padding():
    torch.manual_seed(0)
    model = SequenceCNNForSequenceClassification(SequenceCNNConfig(num_labels=2)).eval()
    ids = torch.randint(5, 9, (1, 30))
    padded = torch.cat([ids, torch.zeros(1, 13, dtype=torch.long)], 1)
    mask = torch.cat([torch.ones(1, 30), torch.zeros(1, 13)], 1).long()
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, model(padded, mask).logits)


@pytest.mark.slow
@pytest.mark.parametrize("probe", ["linear", "cnn"])
def test_probe_trains_the_head_and_never_the_encoder(tmp_path, tiny_export, probe):
    task_dir = motif_task(tmp_path / "task")
    args = finetune.parse_args(["--model", str(tiny_export / "discriminator"), "--task-dir", task_dir,
                                "--output-dir", str(tmp_path / "o"), "--probe", probe, "--probe-layer", "2",
                                *QUICK])
    schedule = finetune.Schedule(learning_rate=finetune.HEAD_LEARNING_RATE, warmup_steps=10)
    kind, location = resolve_model(args.model)
    task = finetune.load_task(task_dir)
    tokenizer = build_tokenizer(location)
    datasets = finetune.build_datasets(task, tokenizer, 256, False)
    _, model, _ = finetune.run_seed(args, schedule, kind, location, task, datasets, tokenizer, 0,
                                    str(tmp_path / "w"))
    assert isinstance(model, FrozenEncoderProbe) and model.layer == 2
    original = AutoModel.from_pretrained(location, trust_remote_code=True).state_dict()
    for name, value in model.encoder.state_dict().items():
        assert torch.equal(value, original[name]), name
    assert all(not p.requires_grad for p in model.encoder.parameters())
    finetune.set_seed(0)
    fresh = build_task_model(args, kind, location, task)  # the head exactly as run_seed's started
    assert any(not torch.equal(p, fresh.head.state_dict()[n]) for n, p in model.head.state_dict().items())
    assert all(p.requires_grad for p in model.head.parameters())


@pytest.mark.slow
def test_probe_run_writes_results_and_the_head(tmp_path, tiny_export):
    results, output = run(tmp_path, tiny_export, motif_task(tmp_path / "task"), "--probe", "linear")
    assert results["model_info"]["trainable_parameters"] == 64 * 2 + 2
    assert sorted(os.listdir(output / "model")) == ["probe.json", "probe_head.safetensors"]
    assert json.loads((output / "model" / "probe.json").read_text())["layer"] == -1


@pytest.mark.slow
def test_lora_trains_adapters_and_saves_a_merged_model(tmp_path, tiny_export):
    results, output = run(tmp_path, tiny_export / "discriminator", motif_task(tmp_path / "task"), "--lora",
                          "--lr", "1e-3")
    info = results["model_info"]
    assert info["trainable_parameters"] < info["parameters"] / 2
    saved = AutoModelForSequenceClassification.from_pretrained(output / "model", trust_remote_code=True)
    assert not any("lora" in name for name in saved.state_dict())  # merged: a plain NucEL classifier


@pytest.mark.slow
def test_random_init_uses_the_folder_shape_with_fresh_weights(tmp_path, tiny_export):
    results, output = run(tmp_path, f"random-init:{tiny_export}/discriminator", motif_task(tmp_path / "task"))
    saved = AutoModelForSequenceClassification.from_pretrained(output / "model", trust_remote_code=True)
    assert saved.config.hidden_size == 64 and saved.config.num_hidden_layers == 4
    assert results["model_info"]["kind"] == "random-init"
    pretrained = AutoModel.from_pretrained(tiny_export / "discriminator", trust_remote_code=True)
    assert not torch.equal(saved.model.layers[1].attn.Wqkv.weight, pretrained.layers[1].attn.Wqkv.weight)


def test_pretraining_run_folder_means_its_discriminator(tiny_export):
    assert resolve_model(str(tiny_export)) == ("pretrained", os.path.join(str(tiny_export), "discriminator"))
    assert resolve_model("org/nucel") == ("pretrained", "org/nucel")
    assert resolve_model("onehot-cnn") == ("onehot-cnn", None)
    assert resolve_model("random-init") == ("random-init", None)


# ----------------------------------------------------------------------------------------------- bad input
def cli_error(tmp_path, *argv, fresh_process=False):
    """The CLI must exit 1 with exactly one `error: ...` line; `fresh_process` also proves nothing else reaches
    stderr (no warning or traceback around it)."""
    argv = [str(a) for a in argv]
    if fresh_process:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        done = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "training", "finetune.py"), *argv],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 1 and len(lines) == 1, done.stderr[-2000:]
        message = lines[0]
    else:
        with pytest.raises(SystemExit) as exit_:
            finetune.cli(argv)
        message = str(exit_.value.code)
    assert message.startswith("error: ") and "\n" not in message
    assert not (tmp_path / "o" / "results.json").exists()
    return message


@pytest.mark.slow
def test_bad_model_name(tmp_path):
    task = motif_task(tmp_path / "task")
    message = cli_error(tmp_path, "--model", "not a model", "--task-dir", task, "--output-dir", tmp_path / "o",
                        fresh_process=True)
    assert "neither a folder, a Hub id (org/name), nor a baseline (onehot-cnn, random-init" in message


def test_folder_without_a_config(tmp_path):
    (tmp_path / "empty").mkdir()
    task = motif_task(tmp_path / "task")
    message = cli_error(tmp_path, "--model", tmp_path / "empty", "--task-dir", task, "--output-dir", tmp_path / "o")
    assert "a folder without config.json" in message


def test_unreachable_hub_id(tmp_path):
    task = motif_task(tmp_path / "task")
    message = cli_error(tmp_path, "--model", "no-such-org/no-such-model", "--task-dir", task,
                        "--output-dir", tmp_path / "o")
    assert "--model no-such-org/no-such-model: could not load its config" in message


def test_missing_split_from_the_cli(tmp_path):
    task = write_task(tmp_path / "task", {"train": [("ACGT", "0"), ("ACGA", "1")]})
    message = cli_error(tmp_path, "--model", "onehot-cnn", "--task-dir", task, "--output-dir", tmp_path / "o")
    assert "no test.csv or test.csv.gz" in message  # dev may be absent (carved from train); test may not


@pytest.mark.slow
def test_too_long_sequences_need_truncate(tmp_path, tiny_export):
    rows = [("ACGT" * 80, "0"), ("ACGA" * 10, "1")] * 8  # 320 bp > the tiny model's 256 tokens
    task = write_task(tmp_path / "task", {s: rows for s in ("train", "dev", "test")})
    message = cli_error(tmp_path, "--model", tiny_export / "discriminator", "--task-dir", task,
                        "--output-dir", tmp_path / "o", fresh_process=True)
    assert "longer than the model's 256 tokens" in message and "--truncate" in message
    results, _ = run(tmp_path, tiny_export / "discriminator", task, "--truncate", name="truncated")
    assert results["config"]["truncate"] is True


@pytest.mark.parametrize("flag", ["--probe linear", "--lora"])
def test_probe_and_lora_need_a_pretrained_model(tmp_path, flag):
    task = motif_task(tmp_path / "task")
    message = cli_error(tmp_path, "--model", "onehot-cnn", "--task-dir", task, "--output-dir", tmp_path / "o",
                        *flag.split())
    assert "needs a pretrained model" in message


def test_score_undefined_correlation_is_zero():
    assert score("regression", [1.0, 2.0, 3.0], np.array([[0.5], [0.5], [0.5]]))["pearson"] == 0.0


# ----------------------------------------------------------------------------------------- Trainer settings users tune
def test_trainer_options_reach_training_arguments(tmp_path):
    args = finetune.parse_args(["--model", "onehot-cnn", "--task-dir", "t", "--output-dir", str(tmp_path / "o"),
                                "--bf16", "--gradient-accumulation-steps", "4", "--gradient-checkpointing",
                                "--report-to", "tensorboard", "--training-arg", "lr_scheduler_type=cosine",
                                "--training-arg", "max_grad_norm=0.5", "--training-arg", "label_smoothing_factor=0.1"])
    schedule = finetune.Schedule(learning_rate=1e-3, warmup_steps=10)
    built = finetune.training_arguments(args, schedule, 42, str(tmp_path / "w"), 100, "mcc")
    checkpointing = getattr(built, "activation_checkpointing", None) or built.gradient_checkpointing
    assert built.bf16 and built.gradient_accumulation_steps == 4 and checkpointing
    assert built.report_to == ["tensorboard"] and built.max_grad_norm == 0.5 and built.label_smoothing_factor == 0.1
    assert getattr(built.lr_scheduler_type, "value", built.lr_scheduler_type) == "cosine"
    assert built.learning_rate == 1e-3 and built.warmup_steps == 10 and args.lr is None  # the options as given
    # accumulation counts in the steps an epoch takes
    args.max_steps, args.epochs = None, 2.0
    assert finetune.total_optimizer_steps(args, 256) == 2 * 256 // (32 * 4)


@pytest.mark.parametrize("item, match", [
    ("warmup", "expected NAME=VALUE"),
    ("no_such_field=1", "--training-arg no_such_field: not a transformers.TrainingArguments field"),
    ("seed=3", "--training-arg seed: set by this script's own options"),
    ("eval_steps=3", "--training-arg eval_steps: set by this script's own options"),
])
def test_bad_training_args_are_one_line(tmp_path, item, match):
    with pytest.raises(ValueError, match=match):
        finetune.parse_args(["--model", "onehot-cnn", "--task-dir", "t", "--output-dir", "o",
                             "--training-arg", item])


@pytest.mark.slow
def test_train_test_only_task_with_tensorboard_and_accumulation(tmp_path):
    """The Genomic Benchmarks layout end to end: dev carved from train and recorded; TensorBoard logs kept in
    --output-dir (the Trainer's own folder is scratch)."""
    rows = motif_rows(160, seed=3)
    task = write_task(tmp_path / "gb_task", {"train": rows[:120], "test": rows[120:]})
    results, output = run(tmp_path, "onehot-cnn", task, "--report-to", "tensorboard",
                          "--gradient-accumulation-steps", "2", "--split-seed", "5")
    assert results["data"]["dev"]["carved_from_train"] == {"fraction": 0.1, "seed": 5, "rows": 12}
    assert {split: d["rows"] for split, d in results["data"].items()} == {"train": 108, "dev": 12, "test": 40}
    assert results["config"]["gradient_accumulation_steps"] == 2 and results["processes"] == 1
    events = [name for root, _, names in os.walk(output / "logs") for name in names if "tfevents" in name]
    assert events, "no TensorBoard event file under --output-dir/logs"
    assert not [name for name in os.listdir(output) if name.startswith(".checkpoints")]


@pytest.mark.slow
def test_two_process_data_parallel_fine_tuning_with_torchrun(tmp_path):
    """`torchrun --nproc_per_node 2` (CPU, gloo): both ranks train, rank 0 alone writes; predictions cover every
    test row once (the Trainer gathers across ranks)."""
    task = motif_task(tmp_path / "task")
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    done = subprocess.run([torchrun, "--nproc_per_node", "2", os.path.join(REPO_ROOT, "training", "finetune.py"),
                           "--model", "onehot-cnn", "--task-dir", task, "--output-dir", str(tmp_path / "o"),
                           "--max-steps", "12", "--eval-steps", "6", "--quiet"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert results["processes"] == 2 and results["seeds"][0]["steps"] == 12
    assert len(read_predictions(tmp_path / "o")) == results["data"]["test"]["rows"] == 64
    assert done.stdout.count("test mcc") == 2  # one seed line and one summary: rank 1 stays quiet
    assert sorted(name for name in os.listdir(tmp_path / "o") if not name.startswith(".nucel")) == [
        "model", "predictions.csv", "results.json"]


# ----------------------------------------------------------------------------------------- learning rate by size
@pytest.mark.slow
def test_default_learning_rate_follows_the_width_and_is_recorded(tmp_path, tiny_export):
    """GUE's 3e-5 belongs to 768-wide encoders: a 64-wide one gets 3e-5 x 768 / 64 = 3.6e-4, recorded with its
    rule; the warmup shrinks to a tenth of a short run."""
    task = motif_task(tmp_path / "task")
    results = finetune.main(["--model", str(tiny_export / "discriminator"), "--task-dir", task, "--output-dir",
                             str(tmp_path / "out"), "--max-steps", "20", "--eval-steps", "10", "--quiet"])
    assert results["learning_rate"] == {"chosen_by": "width rule: 3e-05 x 768 / hidden_size 64", "value": 3.6e-4}
    assert results["config"]["lr"] == 3.6e-4 and results["config"]["warmup_steps"] == 2
    assert finetune.default_learning_rate("random-init", None, finetune.NucELConfig())[0] == 4.5e-5  # 512 wide
    assert finetune.default_learning_rate("onehot-cnn", None, None)[0] == finetune.HEAD_LEARNING_RATE
    assert finetune.default_learning_rate("pretrained", "linear", None)[0] == finetune.HEAD_LEARNING_RATE


@pytest.mark.slow
def test_lr_auto_picks_the_best_dev_candidate_and_scores_test_once(tmp_path, tiny_export, monkeypatch):
    task = motif_task(tmp_path / "task")
    scored = []
    real_run_seed = finetune.run_seed

    def counting_run_seed(*args, score_test=True, **kwargs):
        scored.append((args[1].learning_rate, score_test))  # (options, schedule, ...)
        return real_run_seed(*args, score_test=score_test, **kwargs)

    monkeypatch.setattr(finetune, "run_seed", counting_run_seed)
    results = finetune.main(["--model", str(tiny_export / "discriminator"), "--task-dir", task, "--output-dir",
                             str(tmp_path / "out"), "--lr", "auto", "--seeds", "3", "4", *QUICK])
    chosen = results["learning_rate"]
    assert chosen["chosen_by"] == "dev search (--lr auto)" and chosen["candidates"] == [1.2e-4, 3.6e-4, 1.08e-3]
    assert [entry["lr"] for entry in chosen["search"]] == chosen["candidates"]
    best = max(chosen["search"], key=lambda entry: entry["dev"]["mcc"])
    assert chosen["value"] == best["lr"] == results["config"]["lr"]
    # three dev-only runs of the first seed, then every seed at the chosen rate with test scored
    assert scored == [(lr, False) for lr in chosen["candidates"]] + [(best["lr"], True)] * 2
    assert "test" not in chosen["search"][0] and len(results["seeds"]) == 2


@pytest.mark.parametrize("value", ["fast", "0", "-1e-4"])
def test_bad_lr_is_refused(value):
    with pytest.raises(SystemExit):
        finetune.parse_args(["--model", "onehot-cnn", "--task-dir", "t", "--output-dir", "o", "--lr", value])
