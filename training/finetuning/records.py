"""What a fine-tuning run records: results.json (each seed's record, the protocol every model of a comparison
must share, the options as resolved, the model trained, package versions) and predictions.csv (every seed's test
predictions with per-class scores). nucel.run_records reads these back; nucel.outputs commits the files.

    results.json      task, data checksums, model_info, saved_model, command, config, learning_rate, protocol,
                      processes, versions, seeds (one record each), dev and test (mean ± sd over the seeds)
    predictions.csv   seed, row, sequence, label, prediction[, score_<label> ...]
"""

import argparse
import csv
import importlib.metadata
import json
import os
import platform
import re

import torch

from nucel.files import file_sha256
from nucel.tasks import Task
from nucel.training.finetuning.metrics import PRIMARY_METRIC, aggregate, predicted_labels
from nucel.training.finetuning.stopping import stopping_record

# How the learning rate was chosen, as the protocol records it (a default rule: "default rule, no search").
LEARNING_RATE_SEARCH = {"dev search (--lr auto)": "dev search (--lr auto)", "--lr": "pinned (--lr)"}
# The files a saved model/ keeps its trained weights in: a model, or a probe's head alone.
SAVED_WEIGHTS = ("model.safetensors", "probe_head.safetensors")


# ----------------------------------------------------------------------------------------------- results.json
def versions() -> dict:
    found = {"python": platform.python_version()}
    for package in ("nucel", "torch", "transformers", "accelerate", "datasets", "peft", "scikit-learn", "numpy"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


def describe_model(kind: str, location: str | None, model: torch.nn.Module, model_config=None) -> dict:
    """What was trained, honestly: the class, its model_type, and the checksum of the weights it started from
    (only for a pretrained model, whose backbone load_pretrained proved complete)."""
    described = {"kind": kind, "location": location, "class": type(model).__name__,
                 "model_type": getattr(model_config or getattr(model, "config", None), "model_type", None),
                 "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
                 "parameters": sum(p.numel() for p in model.parameters())}
    weights = (os.path.join(location, "model.safetensors")
               if kind == "pretrained" and location and os.path.isdir(location) else None)
    if weights and os.path.isfile(weights):
        described["weights_sha256"] = file_sha256(weights)
    return described


def seed_record(seed: int, state, primary: str, runtime: float, patience: int, min_delta: float) -> dict:
    """One seed's record from its Trainer's state once training ended: steps, the best dev step, how it stopped
    and the dev curve (the caller adds the best checkpoint's dev and test scores)."""
    history = [{"step": entry["step"], primary: entry[f"eval_{primary}"]}
               for entry in state.log_history if f"eval_{primary}" in entry]
    best_step = int(re.search(r"checkpoint-(\d+)", state.best_model_checkpoint).group(1))
    stopping = stopping_record([entry[primary] for entry in history], state.global_step, state.max_steps,
                               patience, min_delta)
    return {"seed": seed, "steps": state.global_step, "best_step": best_step, "stopping": stopping,
            "dev_history": history, "train_runtime_s": round(runtime, 2)}


def saved_model_record(directory: str, seed: int) -> dict:
    """results.json's `saved_model`: model/ (written into `directory`, committed as model/), the seed it came from
    and the checksum of its weights."""
    weights = next(os.path.join(directory, name) for name in SAVED_WEIGHTS
                   if os.path.isfile(os.path.join(directory, name)))
    return {"path": "model", "seed": seed, "weights": os.path.basename(weights), "sha256": file_sha256(weights)}


def run_config(args: argparse.Namespace, learning_rate: float, warmup_steps: int) -> dict:
    """The options as results.json records them (`config`): every option, --lr and --warmup-steps as resolved."""
    return {**vars(args), "lr": learning_rate, "warmup_steps": warmup_steps}


def protocol(args: argparse.Namespace, max_steps: int, warmup_steps: int, learning_rate: dict) -> dict:
    """What every model of one comparison must share (batch, warmup, evaluation cadence, stopping rule, maximum,
    how the learning rate was chosen): recorded so that tables can check it. `max_steps`: the optimizer steps
    the run's --epochs / --max-steps allow."""
    return {"max_steps": max_steps, "max_epochs": args.epochs, "patience": args.patience,
            "min_delta": args.min_delta, "eval_steps": min(args.eval_steps, max_steps),
            "batch_size": args.batch_size * int(os.environ.get("WORLD_SIZE", "1")) * args.gradient_accumulation_steps,
            "warmup_steps": warmup_steps, "learning_rate": LEARNING_RATE_SEARCH.get(learning_rate["chosen_by"],
                                                                          "default rule, no search")}


def run_results(args: argparse.Namespace, command: list, task: Task, model_info: dict, saved_model: dict,
                learning_rate: dict, warmup_steps: int, max_steps: int, records: list) -> dict:
    """results.json of a run: `learning_rate` as chosen (its `value` trained every seed), `records` one per seed
    (seed_record with dev and test scores)."""
    primary = PRIMARY_METRIC[task.label_type]
    return {"task": task.name, "task_dir": task.directory, "label_type": task.label_type,
            "label_names": task.label_names, "primary_metric": primary, "model": args.model,
            "model_info": model_info, "saved_model": saved_model, "command": list(command),
            "config": run_config(args, learning_rate["value"], warmup_steps),
            "learning_rate": learning_rate, "protocol": protocol(args, max_steps, warmup_steps, learning_rate),
            "processes": int(os.environ.get("WORLD_SIZE", "1")),
            "data": task.describe_data(), "versions": versions(), "seeds": records,
            "dev": aggregate([r["dev"] for r in records]), "test": aggregate([r["test"] for r in records])}


def write_results(path: str, results: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1)


# ----------------------------------------------------------------------------------------------- predictions.csv
def prediction_rows(task: Task, seed: int, logits):
    """predictions.csv rows of one seed: the label and prediction as in the CSV, plus per-class scores."""
    split, label_type = task.splits["test"], task.label_type
    predictions = predicted_labels(label_type, logits)
    if label_type == "multi-class":
        scores = torch.softmax(torch.as_tensor(logits, dtype=torch.float32), -1).numpy()
    elif label_type == "multi-label":
        scores = torch.sigmoid(torch.as_tensor(logits, dtype=torch.float32)).numpy()
    for row, (sequence, label) in enumerate(zip(split.sequences, split.raw_labels)):
        if label_type == "regression":
            yield [seed, row, sequence, label, f"{predictions[row]:.6g}"]
            continue
        if label_type == "multi-label":
            predicted = ";".join(name for name, on in zip(task.label_names, predictions[row]) if on)
        else:
            predicted = task.label_names[predictions[row]]
        yield [seed, row, sequence, label, predicted] + [f"{value:.6g}" for value in scores[row]]


def write_predictions(path: str, task: Task, per_seed_logits) -> None:
    """predictions.csv: `per_seed_logits` [(seed, test logits), ...]."""
    header = ["seed", "row", "sequence", "label", "prediction"]
    if task.label_type != "regression":
        header += [f"score_{name}" for name in task.label_names]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for seed, logits in per_seed_logits:
            writer.writerows(prediction_rows(task, seed, logits))
