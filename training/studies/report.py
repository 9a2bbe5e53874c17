"""The study's outputs: study.json (everything), study.md (the tables) and study.png (scores per task as bars with
error bars; the arms' pretraining curves against the budget's unit)."""

import datetime
import json
import os
import platform

import torch

from training.finetuning.grid import SCALE, published_rows
from training.finetuning.metrics import format_mean_sd
from training.finetuning.run import versions
from training.pretraining.metrics_log import MetricsLog, save_figure

EVALUATION_NAMES = {"finetune": "fine-tune", "linear": "linear probe", "cnn": "CNN probe"}
UNITS = {"tokens": "tokens", "flops": "FLOPs", "seconds": "s"}


def arm_compute(directory, plan):
    """What an arm's pretraining spent, from its own files: steps, tokens, FLOPs, training seconds (the logged
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
    return {"objective": config["objective"], "masking": config["masking"], "steps": summary["steps"],
            "tokens": summary["tokens_seen"], "flops": float(summary["tokens_seen"] * plan["flops_per_token"]),
            "seconds": round(seconds, 1), "validation": summary["validation"], "curve": curve}


def machine():
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} GPU"
    return f"CPU, {os.cpu_count()} cores ({platform.machine()}, torch {torch.__version__})"


def spread(compute, kind):
    """Largest relative difference between arms in the budget's unit (0.0: exactly equal)."""
    spent = [arm[kind] for arm in compute.values()]
    return max(spent) / min(spent) - 1 if min(spent) > 0 else float("inf")


def row_label(row_name, arm, evaluation, model):
    if arm is not None:
        return f"{arm} · {EVALUATION_NAMES[evaluation]}"
    return "random-init · fine-tune" if model.startswith("random-init") else "one-hot CNN"


def results_table(study, results, rows):
    names = [os.path.basename(os.path.normpath(task)) for task in study.tasks]
    metric = {results[(task, rows[0][0])]["primary_metric"] for task in study.tasks}
    lines = [f"Test {'/'.join(sorted(metric)).upper()} x{SCALE}, mean ± sd over {len(study.seeds)} fine-tuning seed(s) "
             "(checkpoint chosen on dev); probes train only a head on the frozen encoder.", "",
             "| model | " + " | ".join(names) + " | mean |", "|---" * (len(names) + 2) + "|"]
    for row_name, arm, evaluation, model, _ in rows:
        cells = [results[(task, row_name)]["test"][results[(task, row_name)]["primary_metric"]]
                 for task in study.tasks]
        mean = sum(cell["mean"] for cell in cells) / len(cells) * SCALE
        lines.append(f"| {row_label(row_name, arm, evaluation, model)} | "
                     + " | ".join(format_mean_sd(cell, SCALE) for cell in cells) + f" | {mean:.2f} |")
    return lines + published_rows(names)


def compute_table(study, compute):
    lines = ["| arm | objective | masking | steps | tokens | FLOPs | training time | final masked-token loss |",
             "|---|---|---|---|---|---|---|---|"]
    for arm, spent in compute.items():
        loss = spent["curve"][-1]["masked_token_loss"] if spent["curve"] else None
        lines.append(f"| {arm} | {spent['objective']} | {spent['masking']} | {spent['steps']:,} | "
                     f"{spent['tokens']:.3g} | {spent['flops']:.3g} | {spent['seconds'] / 60:.1f} min | "
                     + (f"{loss:.4f}" if loss is not None else "—") + " |")
    return lines


def write_report(study, plan, compute, results, rows):
    date = datetime.date.today().isoformat()
    kind = study.budget_kind
    equal = spread(compute, kind)
    names = [os.path.basename(os.path.normpath(task)) for task in study.tasks]
    table = results_table(study, results, rows)
    markdown = [f"# Study: {', '.join(study.arms)} at equal compute", "",
                f"Measured {date} on {machine()}. Budget per arm: {study.budget:.4g} {UNITS[kind]} "
                f"(arms differ by {equal:.2%} in {UNITS[kind]}); tasks: {', '.join(names)}; config `{study.path}`.",
                "", "## Pretraining", "", *compute_table(study, compute), "",
                "Training time is the logged throughput of every interval (evaluation and checkpoints left out); the "
                "masked-token loss is the generator's for ELECTRA (a smaller network) and the MLM's for MLM.", "",
                "## Downstream", "", *table, ""]
    with open(os.path.join(study.output_dir, "study.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(markdown))
    record = {"date": date, "machine": machine(), "versions": versions(), "config": study.path,
              "budget": {"kind": kind, "per_arm": study.budget}, "equal_compute_spread": equal,
              "plan": {arm: {k: v for k, v in entry.items() if k != "recipe"} for arm, entry in plan["arms"].items()},
              "arms": compute, "seeds": study.seeds,
              "results": [{"task": os.path.basename(os.path.normpath(task)), "row": row_name, "arm": arm,
                           "evaluation": evaluation, "model": model,
                           "label": row_label(row_name, arm, evaluation, model),
                           "primary_metric": results[(task, row_name)]["primary_metric"],
                           "learning_rate": results[(task, row_name)].get("learning_rate"),
                           "test": results[(task, row_name)]["test"],
                           "results": os.path.join("evaluation", os.path.basename(os.path.normpath(task)), row_name,
                                                   "results.json")}
                          for task in study.tasks for row_name, arm, evaluation, model, _ in rows]}
    with open(os.path.join(study.output_dir, "study.json"), "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1)
    plot(os.path.join(study.output_dir, "study.png"), record, names, kind)
    print("\n".join(markdown), flush=True)
    return record


def plot(path, record, tasks, kind):
    """Left: per task, one bar per row with its sd over seeds. Right: each arm's masked-token validation loss
    against the budget's unit."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

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
    bars.set(xticks=range(len(tasks)), xticklabels=tasks, ylabel=f"test {metric} x{SCALE} (mean ± sd over seeds)",
             title="downstream, by task")
    bars.axhline(0, color="black", linewidth=0.5)
    bars.legend(fontsize=7, ncol=2)
    for arm, spent in record["arms"].items():
        points = [(point[kind], point["masked_token_loss"]) for point in spent["curve"]]
        if points:
            curves.plot(*zip(*points), marker="o", markersize=3, label=f"{arm} ({spent['objective']})")
    curves.set(xlabel=f"pretraining {UNITS[kind]}", ylabel="validation masked-token loss",
               title="pretraining at equal compute")
    save_figure(figure, [curves], path, dpi=110)
