"""`nucel study`: pretrain every arm at one compute budget (once per pretraining seed), evaluate the arms and the
baselines on every task with full fine-tuning and frozen probes, and write study.md, study.json and study.png.

    nucel study --config training/configs/study-tiny.yaml
    python training/study.py --config my-study.yaml --output-dir runs/my-study

Layout of the output folder (a rerun continues where it stopped: finished runs are not trained again, a stopped
run resumes from its last checkpoint, finished cells are reused while their command, data and weights match):

    plan.json                    each arm's budgeted steps, the same for every pretraining seed of the arm (written
                                 once; the budget is fixed for the folder)
    arms/<arm>.yaml              each run's full pretraining config (`nucel pretrain --config` runs it alone)
    pretraining/<arm>/           the pretraining run (metrics.jsonl, checkpoints, exported models)
    evaluation/<task>/<cell>/    one `nucel finetune` run per (task, arm x evaluation | baseline), all fine-tuning seeds
    study.md, study.json, study.png

With `pretraining_seeds` in the YAML, every arm has one run per seed: arms/<arm>/seed-<s>.yaml,
pretraining/<arm>/seed-<s>/ and, per (task, arm x evaluation) row, evaluation/<task>/<row>/pretraining-seed-<s>/
(the baselines pretrain nothing: one cell each). Every cell gets the YAML's `finetune:` options unchanged (the
same learning-rate rule, batch, warmup, evaluation cadence, patience and maximum for every row).
"""

import argparse
import json
import os

import yaml

from nucel.commands import first_paragraph, one_line_errors
from nucel.console import add_output_options, apply_output_options, output_flags, progress
from nucel.run_directory import claim_output_directory
from nucel.training.finetuning.grid import run_cell
from nucel.training.pretraining import run as pretrain
from nucel.training.pretraining.checkpoints import checkpoint_directories
from nucel.training.studies.budget import plan_arm
from nucel.training.studies.config import read_study
from nucel.training.studies.report import arm_compute, write_report

PLAN_FILE = "plan.json"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=first_paragraph(__doc__))
    parser.add_argument("--config", required=True, help="the study YAML (training/configs/study-tiny.yaml)")
    parser.add_argument("--output-dir", help="overrides the YAML's output_dir")
    add_output_options(parser)  # every pretraining run and fine-tuning cell gets them too (output_flags)
    return parser.parse_args(argv)


def budget_record(study):
    return {"kind": study.budget_kind, "per_arm": study.budget}


# Keys of a run's config that differ between the runs of one arm (or between study folders): not its recipe.
RUN_KEYS = ("max_steps", "seed", "output_dir")


def recipe(config):
    return {key: value for key, value in config.items() if key not in RUN_KEYS}


def make_plan(study):
    """plan.json: every arm's budgeted steps (one plan per arm: its pretraining seeds train alike). Made once; a
    rerun with another budget, another arm recipe or another pretraining layout would compare runs of different
    plans, so it is refused."""
    path = os.path.join(study.output_dir, PLAN_FILE)
    configs = {arm: study.arm_config(arm, max_steps=1, seed=study.pretraining_seeds[0]) for arm in study.arms}
    recipes = {arm: recipe(config.to_dict()) for arm, config in configs.items()}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            plan = json.load(handle)
        if plan.get("budget") != budget_record(study):
            raise ValueError(f"{path}: this study was planned with budget {plan.get('budget')}, the config says "
                             f"{budget_record(study)}; choose another --output-dir for another budget")
        for arm in study.arms:
            if arm in plan["arms"] and recipe(plan["arms"][arm]["recipe"]) != recipes[arm]:
                raise ValueError(f"{path}: arm {arm} was planned with another pretraining config; choose another "
                                 "--output-dir (or another arm name) for a changed recipe")
        check_seed_layout(study, plan, path)
    else:
        plan = {"budget": budget_record(study), "arms": {}}
    for arm in study.arms:
        if arm not in plan["arms"]:
            print(f"planning {arm}: {study.budget:.4g} {study.budget_kind}", flush=True)
            plan["arms"][arm] = {**plan_arm(configs[arm], study.budget_kind, study.budget), "recipe": recipes[arm]}
    plan["seed_folders"], plan["pretraining_seeds"] = study.seed_folders, study.pretraining_seeds
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(plan, handle, indent=1)
    os.replace(path + ".tmp", path)
    return plan


def check_seed_layout(study, plan, path):
    """A study folder keeps its pretraining layout: one run per arm in pretraining/<arm>/ (no `pretraining_seeds`;
    plans written before the key existed), or pretraining/<arm>/seed-<s>/, where seeds can be added later."""
    planned_folders = plan.get("seed_folders", False)
    if planned_folders and not study.seed_folders:
        raise ValueError(f"{path}: this study pretrains one run per seed in pretraining/<arm>/seed-<s>/ (seeds "
                         f"{plan.get('pretraining_seeds')}); give `pretraining_seeds` in the config, or choose "
                         "another --output-dir")
    if study.seed_folders and not planned_folders:
        raise ValueError(f"{path}: this study pretrained one run per arm in pretraining/<arm>/ (no "
                         "`pretraining_seeds`); choose another --output-dir for pretraining_seeds")
    if not study.seed_folders:
        planned = plan.get("pretraining_seeds") or sorted({entry["recipe"]["seed"] for entry in plan["arms"].values()
                                                           if "seed" in entry.get("recipe", {})})
        if planned and planned != study.pretraining_seeds:
            raise ValueError(f"{path}: the arms were pretrained with seed {planned}, the preset's seed is now "
                             f"{study.pretraining_seeds}; choose another --output-dir (or give pretraining_seeds in "
                             "a new study folder)")


def run_name(study, arm, seed):
    """How messages name one pretraining run: the arm, or the arm and its seed."""
    return f"{arm} seed {seed}" if study.seed_folders else arm


def pretraining_finished(directory, max_steps, seed):
    summary = os.path.join(directory, "pretraining_summary.json")
    if not os.path.isfile(summary):
        return False
    with open(summary, encoding="utf-8") as handle:
        finished = json.load(handle)
    return finished.get("steps") == max_steps and finished.get("config", {}).get("seed", seed) == seed \
        and all(os.path.isdir(path) for path in finished["exports"].values())


def pretrain_arm(study, arm, seed, max_steps):
    """One pretraining run of the arm, resumed from its last checkpoint; skipped when it has finished and
    exported."""
    directory, name = study.arm_directory(arm, seed), run_name(study, arm, seed)
    if pretraining_finished(directory, max_steps, seed):
        print(f"{name}: pretraining finished ({max_steps} steps), reused", flush=True)
        return
    config = study.arm_config(arm, max_steps, seed)
    found = checkpoint_directories(directory) if os.path.isdir(directory) else []
    config.resume = bool(found)
    path = study.arm_config_path(arm, seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config.to_dict(), handle, sort_keys=False)
    print(f"{name}: pretraining {max_steps} steps" + (f", resuming from {os.path.basename(found[-1])}" if found
                                                       else "") + f" ({path})", flush=True)
    pretrain.main(["--config", path, *output_flags()])


def cells(study):
    """(row name, arm or None, evaluation, {pretraining seed or None: model}, extra finetune flags) of every
    evaluated row, in table order: an arm row has one model per pretraining seed, a baseline one (seed None)."""
    rows = []
    for arm in study.arms:
        for evaluation in study.evaluations:
            flags = [] if evaluation == "finetune" else ["--probe", evaluation]
            models = {seed: study.arm_directory(arm, seed) for seed in study.pretraining_seeds}
            rows.append((f"{arm}-{evaluation}", arm, evaluation, models, flags))
    shape = study.arm_directory(next(iter(study.arms)), study.pretraining_seeds[0])  # random-init reads its config
    if "random-init" in study.baselines:
        rows.append(("random-init-finetune", None, "finetune", {None: f"random-init:{shape}"}, []))
    if "onehot-cnn" in study.baselines:
        rows.append(("onehot-cnn", None, "finetune", {None: "onehot-cnn"}, []))
    return rows


def evaluate(study, bar=None):
    """{(task, row name): {pretraining seed or None: results.json of that cell}}, every cell trained or reused,
    each with the same finetune.py options (the YAML's `finetune:` and the fine-tuning seeds); `bar`: the study's
    progress bar, one step per cell."""
    flags = study.finetune_flags() + ["--seeds", *map(str, study.seeds), *output_flags()]
    results = {}
    for task in study.tasks:
        name = os.path.basename(os.path.normpath(task))
        for row, _, _, models, extra in cells(study):
            results[(task, row)] = {}
            for seed, model in models.items():
                print(f"--- {name} / {row}" + (f" / pretraining seed {seed}"
                                               if seed is not None and study.seed_folders else ""), flush=True)
                directory = os.path.join(study.output_dir, study.cell_directory(task, row, seed))
                results[(task, row)][seed] = run_cell(task, model, directory, flags + extra)
                if bar is not None:
                    bar.update(1)
    return results


def main(argv=None):
    args = parse_args(argv)
    apply_output_options(args)
    study = read_study(args.config, args.output_dir)  # every refusal before anything is written
    with claim_output_directory(study.output_dir, "study"):
        plan = make_plan(study)
        # one bar over the runs (pretraining runs, then fine-tuning cells); the one in progress shows its steps in
        # the bar's postfix
        cell_count = len(study.tasks) * sum(len(models) for _, _, _, models, _ in cells(study))
        with progress(len(study.runs()) + cell_count, unit="run", desc="study") as bar:
            for arm, seed in study.runs():
                pretrain_arm(study, arm, seed, plan["arms"][arm]["max_steps"])
                bar.update(1)
            compute = {(arm, seed): arm_compute(study.arm_directory(arm, seed), plan["arms"][arm])
                       for arm, seed in study.runs()}
            results = evaluate(study, bar)
        return write_report(study, plan, compute, results, cells(study))


cli = one_line_errors(main)
