"""Fine-tune a grid of models on a grid of tasks and print one markdown table (test metric per task, mean per model).

    python training/benchmark.py --tasks ../shared/data/gue/prom_core_tata ../shared/data/gue/tf_0 \
        --models runs/demo/discriminator random-init:runs/demo/discriminator onehot-cnn --seeds 42 43

Every other option goes to training/finetune.py unchanged, the same for every model (--epochs / --max-steps, the
maximum; --patience, the early-stopping rule; --lr, where `auto` searches for every model or for none; --probe,
--lora, ...). A cell whose seed reached the maximum while dev was still improving is marked † in the table.
Each cell runs `finetune.main` into <output-dir>/<task>/<model>-<hash>/ (the hash of the resolved model, so two
spellings of one folder share a cell and two folders never do); a cell is reused when its results.json came from
the same command, the same split files (SHA-256) and the same model weights, so an interrupted grid continues
where it stopped and a changed task or model is trained again. For GUE tasks the published numbers
(DNABERT-2 paper, Table 4) are printed beside ours. Writes <output-dir>/benchmark.md and benchmark.json.
"""

import argparse
import hashlib
import json
import os
import re

from nucel.commands import first_paragraph, one_line_errors
from nucel.console import add_output_options, apply_output_options, output_flags, progress, without_output_options
from nucel.files import file_sha256
from nucel.gue import PUBLISHED_GUE_MCC, SCALE
from nucel.run_directory import claim_output_directory
from nucel.run_records import UNDER_TRAINED_NOTE, mark, read_results
from nucel.tasks import SPLITS, task_files
from nucel.training.finetuning import run as finetune
from nucel.training.finetuning.metrics import format_mean_sd
from nucel.training.finetuning.models import resolve_model
from nucel.training.finetuning.stopping import protocol_differences


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=first_paragraph(__doc__))
    parser.add_argument("--tasks", nargs="+", required=True,
                        help="task folders (train/[dev/]test .csv/.tsv files; dev carved from train when absent)")
    parser.add_argument("--models", "--model", nargs="+", required=True, dest="models",
                        help="anything finetune.py --model accepts (--model: the same, as the other commands say)")
    parser.add_argument("--output-dir", default="runs/benchmark")
    add_output_options(parser)  # every cell gets them too (output_flags)
    return parser.parse_known_args(argv)


def resolved_model(model):
    """The model a --models entry names, independent of how it is spelled: baselines and Hub ids as given, folders
    as the absolute path of the folder finetune.py would load (random-init:FOLDER likewise)."""
    kind, location = resolve_model(model)
    if location and os.path.isdir(location):
        location = os.path.realpath(location)
    return kind if location is None else f"{kind}:{location}"


def cell_directory(output_dir, task_dir, model):
    """<output-dir>/<task>/<model as a file name>-<8 hex of the resolved model>: readable and never shared."""
    task = os.path.basename(os.path.normpath(task_dir))
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", model.strip("/")).strip("_")[:80]
    digest = hashlib.sha256(resolved_model(model).encode()).hexdigest()[:8]
    return os.path.join(output_dir, task, f"{readable}-{digest}")


def stale_reason(results, argv, task_dir, model):
    """Why a cell's results.json cannot be reused (None: it can): another command, changed split files, or
    changed model weights since it was written."""
    if without_output_options(results.get("command") or []) != without_output_options(argv):
        return "it came from another command"  # --quiet / --progress-bar change what is shown, not what is trained
    files = task_files(task_dir)
    for split in SPLITS:
        recorded = (results.get("data") or {}).get(split, {})
        path = files.get(split) or (files["train"] if recorded.get("carved_from_train") else None)
        if path is None or recorded.get("sha256") != file_sha256(path):
            return f"the {split} split changed"
    kind, location = resolve_model(model)
    recorded = (results.get("model_info") or {}).get("weights_sha256")
    weights = os.path.join(location, "model.safetensors") if kind == "pretrained" and location else None
    if weights and os.path.isfile(weights) and recorded != file_sha256(weights):
        return "the model's weights changed"
    return None


def run_cell(task_dir, model, output_dir, finetune_args):
    """results.json of one (task, model) cell: reused when nothing it depends on changed, else trained."""
    argv = ["--model", model, "--task-dir", task_dir, "--output-dir", output_dir, *finetune_args]
    path = os.path.join(output_dir, "results.json")
    if os.path.isfile(path):
        try:
            results = read_results(path)
            reason = stale_reason(results, argv, task_dir, model)
        except ValueError as unreadable:
            reason = str(unreadable)
        if reason is None:
            print(f"reusing {path}", flush=True)
            return results
        print(f"not reusing {path}: {reason}; training again", flush=True)
    return finetune.main(argv)


def markdown_table(results, tasks, models):
    """Rows: our models, then the published ones for the GUE tasks among `tasks`. Cells: test metric x100."""
    names = [os.path.basename(os.path.normpath(task)) for task in tasks]
    metrics = {results[(task, models[0])]["primary_metric"] for task in tasks}
    seeds = sorted({len(results[key]["seeds"]) for key in results})
    header = ["model"] + [f"{name} ({results[(task, models[0])]['primary_metric']})" if len(metrics) > 1 else name
                          for name, task in zip(names, tasks)] + ["mean"]
    lines = [f"Test {'/'.join(sorted(metrics)).upper()} x{SCALE}, mean ± sd over {'/'.join(map(str, seeds))} "
             f"seed(s); {protocol_line(results[(tasks[0], models[0])])}.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in models:
        cells = [results[(task, model)] for task in tasks]
        scores = [cell["test"][cell["primary_metric"]] for cell in cells]
        mean = sum(score["mean"] for score in scores) / len(scores) * SCALE
        lines.append("| " + " | ".join([model] + [format_mean_sd(score, SCALE) + mark(cell)
                                                  for score, cell in zip(scores, cells)] + [f"{mean:.2f}"]) + " |")
    lines += published_rows(names)
    if any(mark(cell) for cell in results.values()):
        lines += ["", UNDER_TRAINED_NOTE]
    for task, name in zip(tasks, names):
        lines += [f"\nwarning: {name}: the models were not trained alike: {difference}"
                  for difference in protocol_differences({model: results[(task, model)] for model in models})]
    return "\n".join(lines)


def protocol_line(results):
    """How every cell was trained, from a results.json's protocol (older files: the fixed-budget wording)."""
    protocol = results.get("protocol")
    if protocol is None:
        return "checkpoint chosen on dev"
    maximum = (f"{protocol['max_epochs']:g} epochs" if protocol.get("max_epochs")
               else f"{protocol['max_steps']:,} steps")
    stopping = (f"early stopping on dev (patience {protocol['patience']} evaluations, every "
                f"{protocol['eval_steps']} steps) within at most {maximum}"
                if protocol["patience"] else f"a fixed {maximum} (no early stopping)")
    return (f"every model trained alike: batch {protocol['batch_size']}, warmup {protocol['warmup_steps']} steps, "
            f"{stopping}, learning rate: {protocol['learning_rate']}; best dev checkpoint scored on test once")


def published_rows(task_names):
    """Table rows of the published GUE models for `task_names` (— where a task has no number) and the source
    line; nothing when none of the tasks is a GUE task."""
    if not any(name in PUBLISHED_GUE_MCC["DNABERT-2"] for name in task_names):
        return []
    lines = []
    for reference, scores in PUBLISHED_GUE_MCC.items():
        known = [scores.get(name) for name in task_names]
        mean = f"{sum(known) / len(known):.2f}" if None not in known else "—"
        lines.append("| " + " | ".join([f"{reference} (published)"]
                                       + ["—" if value is None else f"{value:.2f}" for value in known]
                                       + [mean]) + " |")
    return lines + ["", "Published: DNABERT-2 paper (Zhou et al., ICLR 2024), Table 4, test MCC x100; those models "
                    "were trained far longer than these runs."]


def main(argv=None):
    args, finetune_args = parse_args(argv)
    apply_output_options(args)
    finetune_args = [*finetune_args, *output_flags()]
    names = {}
    for task in args.tasks:  # bad input stops the grid before its first cell trains
        task_files(task)
        names.setdefault(os.path.basename(os.path.normpath(task)), []).append(task)
    for name, tasks in names.items():
        if len(tasks) > 1:
            raise ValueError(f"--tasks {' and '.join(tasks)}: two tasks named {name!r} (cells and the table name "
                             "tasks by folder name); give each task once, in folders with distinct names")
    resolved = {}
    for model in args.models:
        resolved.setdefault(resolved_model(model), []).append(model)
    repeated = [names for names in resolved.values() if len(names) > 1]
    if repeated:
        raise ValueError(f"--models {' and '.join(repeated[0])}: the same model twice; give each model once")
    with claim_output_directory(args.output_dir, "benchmark"):
        return run_grid(args, finetune_args)


def run_grid(args, finetune_args):
    results = {}
    # one bar over the cells; the cell in training shows its seed's steps in the bar's postfix
    with progress(len(args.tasks) * len(args.models), unit="cell", desc="benchmark") as bar:
        for task in args.tasks:
            for model in args.models:
                results[(task, model)] = run_cell(task, model, cell_directory(args.output_dir, task, model),
                                                  finetune_args)
                bar.update(1)
    table = markdown_table(results, args.tasks, args.models)
    with open(os.path.join(args.output_dir, "benchmark.md"), "w", encoding="utf-8") as handle:
        handle.write(table + "\n")
    with open(os.path.join(args.output_dir, "benchmark.json"), "w", encoding="utf-8") as handle:
        json.dump([{"task": task, "model": model, "results": os.path.join(cell_directory(args.output_dir, task,
                                                                                          model), "results.json"),
                    "test": results[(task, model)]["test"]} for task, model in results], handle, indent=1)
    print("\n" + table, flush=True)
    return table


cli = one_line_errors(main)
