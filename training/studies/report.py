"""The study's outputs: study.json (everything), study.md (the tables) and study.png (scores per task as bars with
error bars; the pretraining curves against the budget's unit).

study.md, Downstream section, in order:
- a Protocol line read from every cell's results.json (learning-rate rule, batch, warmup, evaluation cadence,
  early stopping and maximum), and a warning line for each setting that differs between rows of one task (a cell
  reused from an older command) or when some rows searched the learning rate and others did not;
- the results table: per row and task the test metric x100 as mean ± sd over every run of the row (each
  pretraining seed x each fine-tuning seed; a baseline pretrains nothing: its fine-tuning seeds), with
  `run_records.UNDER_TRAINED_MARK` on a cell any of whose runs reached its maximum while dev was still improving,
  and `run_records.UNDER_TRAINED_NOTE` below the table when any cell is marked;
- with several pretraining seeds, a spread table: per arm row and task, the sd across pretraining seeds (of each
  seed's mean over its fine-tuning seeds) beside the sd across fine-tuning seeds (within one pretraining run,
  averaged over the runs).
study.json keeps every cell's numbers (per pretraining seed), protocol and under-trained seeds.
"""

import datetime
import json
import os
import platform
import statistics

import torch

from nucel import run_records
from nucel.gue import SCALE
from nucel.training.finetuning.grid import published_rows
from nucel.training.finetuning.metrics import format_mean_sd
from nucel.training.finetuning.records import versions
from nucel.training.pretraining.metrics_log import MetricsLog, save_figure

EVALUATION_NAMES = {"finetune": "fine-tune", "linear": "linear probe", "cnn": "CNN probe"}
UNITS = {"tokens": "tokens", "flops": "FLOPs", "seconds": "s"}
# Settings of the fine-tuning protocol that must be equal for every row of a task: (key, how the report names it).
PROTOCOL_SETTINGS = (("batch_size", "batch size"), ("warmup_steps", "warmup steps"),
                     ("eval_steps", "dev evaluation every N steps"), ("patience", "patience"),
                     ("min_delta", "min delta"), ("max_steps", "maximum"))


def arm_compute(directory, plan):
    """What a pretraining run spent, from its own files: steps, tokens, FLOPs, training seconds (the logged
    throughput of every interval, so time spent evaluating and checkpointing is left out) and its curve."""
    with open(os.path.join(directory, "pretraining_summary.json"), encoding="utf-8") as handle:
        summary = json.load(handle)
    records = MetricsLog(os.path.join(directory, "metrics.jsonl")).read()
    seconds, previous, elapsed = 0.0, 0, {}
    for record in records:
        if "tokens_per_second" in record:
            seconds += (record["step"] - previous) * plan["tokens_per_step"] / record["tokens_per_second"]
            previous = record["step"]
        elapsed[record["step"]] = seconds
    config = summary["config"]
    masked_loss = "eval_generator_loss" if config["objective"] == "electra" else "eval_mlm_loss"
    curve = [{"step": r["step"], "tokens": r["step"] * plan["tokens_per_step"],
              "flops": float(r["step"] * plan["tokens_per_step"] * plan["flops_per_token"]),
              "seconds": round(elapsed[r["step"]], 2), "masked_token_loss": r[masked_loss],
              **({"discriminator_auc": r["eval_discriminator_auc"]} if "eval_discriminator_auc" in r else {})}
             for r in records if masked_loss in r]
    return {"objective": config["objective"], "masking": config["masking"], "seed": config.get("seed"),
            "steps": summary["steps"], "tokens": summary["tokens_seen"],
            "flops": float(summary["tokens_seen"] * plan["flops_per_token"]),
            "seconds": round(seconds, 1), "validation": summary["validation"], "curve": curve}


def machine():
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} GPU"
    return f"CPU, {os.cpu_count()} cores ({platform.machine()}, torch {torch.__version__})"


def spread(compute, kind):
    """Largest relative difference between pretraining runs in the budget's unit (0.0: exactly equal)."""
    spent = [run[kind] for run in compute.values()]
    return max(spent) / min(spent) - 1 if min(spent) > 0 else float("inf")


def row_label(row_name, arm, evaluation, model):
    if arm is not None:
        return f"{arm} · {EVALUATION_NAMES[evaluation]}"
    return "random-init · fine-tune" if model.startswith("random-init") else "one-hot CNN"


def label_of(row):
    row_name, arm, evaluation, models, _ = row
    return row_label(row_name, arm, evaluation, next(iter(models.values())))


def task_name(task):
    return os.path.basename(os.path.normpath(task))


def primary_metric(cells):
    return next(iter(cells.values()))["primary_metric"]


# ------------------------------------------------------------------------------------------------- one row, one task
def pooled_test(cells):
    """{metric: {mean, sd, n, values}} over every run of a row's cells (each pretraining seed x each fine-tuning
    seed); sd is the sample sd of all of them (None for one run)."""
    first = next(iter(cells.values()))["test"]
    pooled = {}
    for metric in first:
        values = [value for results in cells.values() for value in results["test"][metric]["values"]]
        pooled[metric] = {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None,
                          "n": len(values), "values": values}
    return pooled


def summarize_row(cells):
    """One (row, task): `cells` is {pretraining seed or None: results.json}. The pooled test metrics, and for the
    primary metric the sd across pretraining seeds (of each seed's mean; None below two seeds) and the mean sd
    across fine-tuning seeds (None below two fine-tuning seeds), and the under-trained mark."""
    metric = primary_metric(cells)
    means = [results["test"][metric]["mean"] for results in cells.values()]
    sds = [results["test"][metric]["sd"] for results in cells.values()]
    marks = {seed: run_records.mark(results) for seed, results in cells.items()}
    return {"primary_metric": metric, "test": pooled_test(cells),
            "pretraining_seeds": len(cells), "finetuning_seeds": sorted({len(results["test"][metric]["values"])
                                                                        for results in cells.values()}),
            "pretraining_sd": statistics.stdev(means) if len(means) > 1 else None,
            "finetuning_sd": statistics.fmean(sds) if None not in sds else None,
            "mark": run_records.UNDER_TRAINED_MARK if any(marks.values()) else ""}


# ---------------------------------------------------------------------------------------------------------- tables
def seeds_caption(summaries, rows):
    """'arm rows: P pretraining seed(s) x F fine-tuning seed(s) = N runs per cell; baseline rows (nothing
    pretrained): F fine-tuning seed(s)', counted from the cells themselves."""
    parts = []
    for kind in ("arm", "baseline"):
        names = {row[0] for row in rows if (row[1] is not None) == (kind == "arm")}
        chosen = [summary for (_, name), summary in summaries.items() if name in names]
        if not chosen:
            continue
        pretraining = sorted({summary["pretraining_seeds"] for summary in chosen})
        finetuning = sorted({n for summary in chosen for n in summary["finetuning_seeds"]})
        fine = f"{'/'.join(map(str, finetuning))} fine-tuning seed(s)"
        if kind == "arm":
            runs = sorted({p * f for p in pretraining for f in finetuning})
            parts.append(f"arm rows: {'/'.join(map(str, pretraining))} pretraining seed(s) x {fine} = "
                         f"{'/'.join(map(str, runs))} runs per cell")
        else:
            parts.append(f"baseline rows (nothing pretrained): {fine}")
    return "; ".join(parts)


def results_table(study, results, rows):
    """The results table (with the published GUE rows) and, when any cell is marked, the under-trained note."""
    summaries = {(task, row[0]): summarize_row(results[(task, row[0])]) for task in study.tasks for row in rows}
    names = [task_name(task) for task in study.tasks]
    metric = {summaries[(task, rows[0][0])]["primary_metric"] for task in study.tasks}
    lines = [f"Test {'/'.join(sorted(metric)).upper()} x{SCALE}, mean ± sd over every run of a row "
             f"({seeds_caption(summaries, rows)}); checkpoint chosen on dev; probes train only a head on the frozen "
             "encoder.", "",
             "| model | " + " | ".join(names) + " | mean |", "|---" * (len(names) + 2) + "|"]
    marked = False
    for row in rows:
        cells = [summaries[(task, row[0])] for task in study.tasks]
        mean = sum(cell["test"][cell["primary_metric"]]["mean"] for cell in cells) / len(cells) * SCALE
        marked = marked or any(cell["mark"] for cell in cells)
        lines.append(f"| {label_of(row)} | "
                     + " | ".join(format_mean_sd(cell["test"][cell["primary_metric"]], SCALE) + cell["mark"]
                                  for cell in cells) + f" | {mean:.2f} |")
    lines += published_rows(names)
    return lines + (["", run_records.UNDER_TRAINED_NOTE] if marked else [])


def spread_table(study, results, rows):
    """Per arm row and task, 'pretraining sd / fine-tuning sd' (x SCALE); nothing when no row has two pretraining
    seeds."""
    arm_rows = [row for row in rows if row[1] is not None and len(row[3]) > 1]
    if not arm_rows:
        return []
    names = [task_name(task) for task in study.tasks]
    metric = "/".join(sorted({primary_metric(results[(task, arm_rows[0][0])]) for task in study.tasks})).upper()

    def number(value):
        return "—" if value is None else f"{value * SCALE:.2f}"

    lines = [f"Where the spread comes from, test {metric} x{SCALE}: **pretraining sd / fine-tuning sd**, the sd "
             "across pretraining seeds of each seed's mean over its fine-tuning seeds / the sd across fine-tuning "
             "seeds within one pretraining run, averaged over the runs.", "",
             "| model | " + " | ".join(names) + " | mean |", "|---" * (len(names) + 2) + "|"]
    for row in arm_rows:
        cells = [summarize_row(results[(task, row[0])]) for task in study.tasks]
        columns = []
        for cell in cells + [None]:
            if cell is None:  # the mean over tasks
                pair = [[c[key] for c in cells] for key in ("pretraining_sd", "finetuning_sd")]
                pair = [None if None in values else statistics.fmean(values) for values in pair]
            else:
                pair = [cell["pretraining_sd"], cell["finetuning_sd"]]
            columns.append(f"{number(pair[0])} / {number(pair[1])}")
        lines.append(f"| {label_of(row)} | " + " | ".join(columns) + " |")
    return lines


def compute_table(study, compute):
    """One row per pretraining run (arm x pretraining seed)."""
    lines = ["| arm | pretraining seed | objective | masking | steps | tokens | FLOPs | training time | "
             "final masked-token loss |", "|---|---|---|---|---|---|---|---|---|"]
    for (arm, seed), spent in compute.items():
        loss = spent["curve"][-1]["masked_token_loss"] if spent["curve"] else None
        lines.append(f"| {arm} | {seed} | {spent['objective']} | {spent['masking']} | {spent['steps']:,} | "
                     f"{spent['tokens']:.3g} | {spent['flops']:.3g} | {spent['seconds'] / 60:.1f} min | "
                     + (f"{loss:.4f}" if loss is not None else "—") + " |")
    return lines


# -------------------------------------------------------------------------------------------------------- protocol
def cell_protocol(results):
    """The fine-tuning protocol of one cell: its results.json's `protocol` mapping, completed from `config` and
    `learning_rate` (all that results.json files written before `protocol` existed record); `learning_rate` is
    the rule in full (`chosen_by`), `searched` whether it was the dev search (--lr auto)."""
    protocol = dict(results.get("protocol") or {})
    config = results.get("config") or {}
    learning_rate = results.get("learning_rate") or {}
    rule = learning_rate.get("chosen_by") or protocol.get("learning_rate") or "not recorded"
    maximum = protocol.get("max_steps") or config.get("max_steps") \
        or (f"{config['epochs']:g} epochs" if config.get("epochs") else None)
    return {"learning_rate": rule, "lr_value": learning_rate.get("value"),
            "lr_candidates": len(learning_rate.get("candidates") or []),
            "searched": "candidates" in learning_rate,  # --lr auto records the candidates it tried
            "batch_size": protocol.get("batch_size", config.get("batch_size")),
            "warmup_steps": protocol.get("warmup_steps", config.get("warmup_steps")),
            "eval_steps": protocol.get("eval_steps", config.get("eval_steps")),
            "patience": protocol.get("patience", config.get("patience")),  # None: recorded before early stopping
            "min_delta": protocol.get("min_delta", config.get("min_delta")),
            "max_steps": maximum, "max_epochs": protocol.get("max_epochs")}


def listed(values):
    return " / ".join(str(value) for value in values)


def differences(entries, key):
    """{value: [cells]} of one task's (label, pretraining seed, protocol) entries when they differ in `key` ({}
    when they agree); a cell is named by its row, or by row and pretraining seed where the row's cells differ."""
    by_value, per_label = {}, {}
    for label, seed, protocol in entries:
        by_value.setdefault(protocol[key], []).append((label, seed))
        per_label.setdefault(label, set()).add(protocol[key])
    if len(by_value) < 2:
        return {}
    return {value: list(dict.fromkeys(label if len(per_label[label]) == 1 else f"{label} (pretraining seed {seed})"
                                      for label, seed in cells)) for value, cells in by_value.items()}


def protocol_lines(study, results, rows):
    """The Protocol line (what every row was trained with) and a warning line per setting on which rows of one
    task differ, or when some rows of a task searched the learning rate and others did not."""
    by_task = {task_name(task): [(label_of(row), seed, cell_protocol(cell))
                                 for row in rows for seed, cell in results[(task, row[0])].items()]
               for task in study.tasks}
    protocols = [protocol for entries in by_task.values() for _, _, protocol in entries]
    warnings, shown = [], {}
    for key, name in PROTOCOL_SETTINGS:
        values = list(dict.fromkeys(protocol[key] for protocol in protocols))
        shown[key] = listed(values) + (" (by task)" if len(values) > 1 else "")
        for task, entries in by_task.items():
            differ = differences(entries, key)
            if differ:
                warnings.append(f"**Warning:** rows of {task} differ in {name}: " + "; ".join(
                    f"{value} ({', '.join(cells)})" for value, cells in differ.items())
                    + ". A cell reused from an older command? Delete its folder under evaluation/ and rerun.")
                shown[key] = listed(values)
    searched = {protocol["searched"] for protocol in protocols}
    for task, entries in by_task.items():
        differ = differences(entries, "searched")
        if differ:
            warnings.append(f"**Warning:** rows of {task} were not tuned alike: the learning rate was searched on "
                            f"dev (--lr auto) for {', '.join(differ[True])} but not for {', '.join(differ[False])}.")
    if len(searched) > 1:
        learning_rate = "searched (--lr auto) for some rows only"
    elif True in searched:
        candidates = listed(sorted({protocol["lr_candidates"] for protocol in protocols}))
        learning_rate = (f"--lr auto for every row: the best on dev of {candidates} candidates around each model's "
                         "default (first fine-tuning seed; test never scored), then every seed with it")
    else:
        rules = {}
        for protocol in protocols:
            rules.setdefault(protocol["learning_rate"], set()).add(protocol["lr_value"])
        learning_rate = "no search, for every row: " + "; ".join(
            f"{rule} = {listed(f'{value:g}' for value in sorted(values) if value is not None)}"
            if rule != "--lr" else f"--lr {listed(f'{value:g}' for value in sorted(values))}"
            for rule, values in rules.items())
    patience = list(dict.fromkeys(protocol["patience"] for protocol in protocols))
    epochs = list(dict.fromkeys(protocol["max_epochs"] for protocol in protocols))
    maximum = shown["max_steps"] + (" steps" if all(isinstance(protocol["max_steps"], int)
                                                    for protocol in protocols) else "") \
        + (f" ({epochs[0]:g} epochs)" if len(epochs) == 1 and epochs[0] else "")
    if patience == [None]:
        ending = f"a fixed budget of {maximum} (these results.json files predate early stopping)"
    elif patience == [0]:
        ending = f"no early stopping: a fixed budget of {maximum}"
    else:
        ending = (f"training stops after {shown['patience']} dev evaluations without improvement (min delta "
                  f"{shown['min_delta']}) or at {maximum}")
    line = (f"**Protocol** (read from every cell's results.json; the study gives every cell the same `finetune:` "
            f"options): learning rate: {learning_rate}; batch {shown['batch_size']}; warmup "
            f"{shown['warmup_steps']} steps; dev evaluated every {shown['eval_steps']} steps; {ending}; "
            f"{len(study.seeds)} fine-tuning seed(s) per cell.")
    return [line] + warnings


# ---------------------------------------------------------------------------------------------------------- report
def result_record(study, task, row, cells):
    """study.json's entry of one (row, task): pooled numbers, both spreads, and every cell (pretraining seed)."""
    row_name, arm, evaluation, models, _ = row
    summary = summarize_row(cells)
    return {"task": task_name(task), "row": row_name, "arm": arm, "evaluation": evaluation, "label": label_of(row),
            "primary_metric": summary["primary_metric"], "test": summary["test"],
            "pretraining_sd": summary["pretraining_sd"], "finetuning_sd": summary["finetuning_sd"],
            "under_trained": bool(summary["mark"]),
            "under_trained_seeds": [{"pretraining_seed": seed, "seed": finetuning_seed}
                                    for seed, results in cells.items()
                                    for finetuning_seed in run_records.under_trained_seeds(results)],
            "cells": [{"pretraining_seed": seed, "model": models[seed],
                       "results": os.path.join(study.cell_directory(task, row_name, seed), "results.json"),
                       "learning_rate": results.get("learning_rate"), "protocol": cell_protocol(results),
                       "stopping": [record.get("stopping") for record in results.get("seeds", [])],
                       "under_trained_seeds": run_records.under_trained_seeds(results), "test": results["test"]}
                      for seed, results in cells.items()]}


def arm_summaries(study, compute):
    """Per arm, over its pretraining seeds: what every run shares (objective, masking, steps, tokens, FLOPs) and
    the mean training time."""
    summaries = {}
    for arm in study.arms:
        runs = [spent for (name, _), spent in compute.items() if name == arm]
        summaries[arm] = {**{key: runs[0][key] for key in ("objective", "masking", "steps", "tokens", "flops")},
                          "pretraining_seeds": [seed for name, seed in compute if name == arm],
                          "seconds_mean": round(statistics.fmean(run["seconds"] for run in runs), 1)}
    return summaries


def write_report(study, plan, compute, results, rows):
    """study.md, study.json and study.png. `compute`: {(arm, pretraining seed): arm_compute}; `results`:
    {(task, row name): {pretraining seed or None: results.json}}; `rows`: run.cells(study)."""
    date = datetime.date.today().isoformat()
    kind = study.budget_kind
    equal = spread(compute, kind)
    names = [task_name(task) for task in study.tasks]
    seeds = ", ".join(map(str, study.pretraining_seeds))
    markdown = [f"# Study: {', '.join(study.arms)} at equal compute", "",
                f"Measured {date} on {machine()}. Budget per arm: {study.budget:.4g} {UNITS[kind]} "
                f"(pretraining runs differ by {equal:.2%} in {UNITS[kind]}); pretraining seed(s) of every arm: "
                f"{seeds}; tasks: {', '.join(names)}; config `{study.path}`.",
                "", "## Pretraining", "", *compute_table(study, compute), "",
                "One row per pretraining run (arm x pretraining seed; every seed of an arm trains the arm's budgeted "
                "steps). Training time is the logged throughput of every interval (evaluation and checkpoints left "
                "out); the masked-token loss is the generator's for ELECTRA (a smaller network) and the MLM's for "
                "MLM.", "",
                "## Downstream", "", *protocol_lines(study, results, rows), "", *results_table(study, results, rows),
                ""]
    spreads = spread_table(study, results, rows)
    if spreads:
        markdown += [*spreads, ""]
    with open(os.path.join(study.output_dir, "study.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(markdown))
    record = {"date": date, "machine": machine(), "versions": versions(), "config": study.path,
              "budget": {"kind": kind, "per_arm": study.budget}, "equal_compute_spread": equal,
              "plan": {arm: {k: v for k, v in entry.items() if k != "recipe"} for arm, entry in plan["arms"].items()},
              "pretraining_seeds": study.pretraining_seeds, "seeds": study.seeds,
              "arms": arm_summaries(study, compute),
              "pretraining": [{"arm": arm, "pretraining_seed": seed,
                               "directory": os.path.relpath(study.arm_directory(arm, seed), study.output_dir),
                               **spent} for (arm, seed), spent in compute.items()],
              "results": [result_record(study, task, row, results[(task, row[0])])
                          for task in study.tasks for row in rows]}
    with open(os.path.join(study.output_dir, "study.json"), "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1)
    plot(os.path.join(study.output_dir, "study.png"), record, names, kind)
    print("\n".join(markdown), flush=True)
    return record


def plot(path, record, tasks, kind):
    """Left: per task, one bar per row with its sd over every run. Right: each pretraining run's masked-token
    validation loss against the budget's unit."""
    import matplotlib  # noqa: PLC0415  (plotting only; importing this module leaves matplotlib's backend alone)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415  (after the Agg backend is chosen)

    labels = list(dict.fromkeys(entry["label"] for entry in record["results"]))
    by_key = {(entry["task"], entry["label"]): entry for entry in record["results"]}
    figure, (bars, curves) = plt.subplots(1, 2, figsize=(14, 4.8), gridspec_kw={"width_ratios": [2.2, 1]})
    width = 0.8 / len(labels)
    # one colour per arm (and per baseline), one fill per evaluation: solid fine-tune, pale linear, hatched CNN
    families = list(dict.fromkeys(entry["arm"] or entry["label"] for entry in record["results"]))
    colours = plt.get_cmap("tab10")
    styles = {"finetune": {}, "linear": {"alpha": 0.45}, "cnn": {"hatch": "///", "edgecolor": "white"}}
    for position, label in enumerate(labels):
        first = next(entry for entry in record["results"] if entry["label"] == label)
        style = {"color": colours(families.index(first["arm"] or label) % 10), **styles[first["evaluation"]]}
        means, sds = [], []
        for task in tasks:
            entry = by_key[(task, label)]
            test = entry["test"][entry["primary_metric"]]
            means.append(test["mean"] * SCALE)
            sds.append((test["sd"] or 0.0) * SCALE)
        offsets = [index - 0.4 + width * (position + 0.5) for index in range(len(tasks))]
        bars.bar(offsets, means, width, yerr=sds, capsize=2, label=label, **style)
    metric = record["results"][0]["primary_metric"].upper()
    bars.set(xticks=range(len(tasks)), xticklabels=tasks,
             ylabel=f"test {metric} x{SCALE} (mean ± sd over every run)", title="downstream, by task")
    bars.axhline(0, color="black", linewidth=0.5)
    bars.legend(fontsize=7, ncol=2)
    several = len(record["pretraining_seeds"]) > 1
    for run in record["pretraining"]:
        points = [(point[kind], point["masked_token_loss"]) for point in run["curve"]]
        if points:
            name = f"{run['arm']} seed {run['pretraining_seed']}" if several else run["arm"]
            curves.plot(*zip(*points), marker="o", markersize=3, label=f"{name} ({run['objective']})")
    curves.set(xlabel=f"pretraining {UNITS[kind]}", ylabel="validation masked-token loss",
               title="pretraining at equal compute")
    save_figure(figure, [curves], path, dpi=110)
