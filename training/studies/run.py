"""`nucel-study`: pretrain every arm at one compute budget, evaluate the arms and the baselines on every task with
full fine-tuning and frozen probes, and write study.md, study.json and study.png.

    nucel-study --config training/configs/study-tiny.yaml
    python training/study.py --config my-study.yaml --output-dir runs/my-study

Layout of the output folder (a rerun continues where it stopped: finished arms are not trained again, a stopped
arm resumes from its last checkpoint, finished cells are reused while their command, data and weights match):

    plan.json                    each arm's budgeted steps (written once; the budget is fixed for the folder)
    arms/<arm>.yaml              each arm's full pretraining config (`nucel-pretrain --config` runs it alone)
    pretraining/<arm>/           the pretraining run (metrics.jsonl, checkpoints, exported models)
    evaluation/<task>/<cell>/    one finetune.py run per (task, arm x evaluation | baseline), every seed
    study.md, study.json, study.png
"""

import argparse
import json
import os

import yaml

from training.cli import one_line_errors
from training.finetuning.grid import run_cell
from training.pretraining import run as pretrain
from training.pretraining.checkpoints import checkpoint_directories
from training.run_directory import claim_output_directory
from training.studies.budget import plan_arm
from training.studies.config import read_study
from training.studies.report import arm_compute, write_report

PLAN_FILE = "plan.json"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="the study YAML (training/configs/study-tiny.yaml)")
    parser.add_argument("--output-dir", help="overrides the YAML's output_dir")
    return parser.parse_args(argv)


def budget_record(study):
    return {"kind": study.budget_kind, "per_arm": study.budget}


def make_plan(study):
    """plan.json: every arm's budgeted steps. Made once; a rerun with another budget or another arm recipe would
    compare runs of different plans, so it is refused."""
    path = os.path.join(study.output_dir, PLAN_FILE)
    configs = {arm: study.arm_config(arm, max_steps=1) for arm in study.arms}
    recipes = {arm: {key: value for key, value in config.to_dict().items() if key != "max_steps"}
               for arm, config in configs.items()}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            plan = json.load(handle)
        if plan.get("budget") != budget_record(study):
            raise ValueError(f"{path}: this study was planned with budget {plan.get('budget')}, the config says "
                             f"{budget_record(study)}; choose another --output-dir for another budget")
        for arm in study.arms:
            if arm in plan["arms"] and plan["arms"][arm]["recipe"] != recipes[arm]:
                raise ValueError(f"{path}: arm {arm} was planned with another pretraining config; choose another "
                                 "--output-dir (or another arm name) for a changed recipe")
    else:
        plan = {"budget": budget_record(study), "arms": {}}
    for arm in study.arms:
        if arm not in plan["arms"]:
            print(f"planning {arm}: {study.budget:.4g} {study.budget_kind}", flush=True)
            plan["arms"][arm] = {**plan_arm(configs[arm], study.budget_kind, study.budget), "recipe": recipes[arm]}
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(plan, handle, indent=1)
    os.replace(path + ".tmp", path)
    return plan


def pretraining_finished(directory, max_steps):
    summary = os.path.join(directory, "pretraining_summary.json")
    if not os.path.isfile(summary):
        return False
    with open(summary, encoding="utf-8") as handle:
        finished = json.load(handle)
    return finished.get("steps") == max_steps and all(os.path.isdir(path) for path in finished["exports"].values())


def pretrain_arm(study, arm, max_steps):
    """The arm's pretraining, resumed from its last checkpoint; skipped when it has finished and exported."""
    directory = study.arm_directory(arm)
    if pretraining_finished(directory, max_steps):
        print(f"{arm}: pretraining finished ({max_steps} steps), reused", flush=True)
        return
    config = study.arm_config(arm, max_steps)
    found = checkpoint_directories(directory) if os.path.isdir(directory) else []
    config.resume = bool(found)
    os.makedirs(os.path.join(study.output_dir, "arms"), exist_ok=True)
    path = os.path.join(study.output_dir, "arms", f"{arm}.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config.to_dict(), handle, sort_keys=False)
    print(f"{arm}: pretraining {max_steps} steps" + (f", resuming from {os.path.basename(found[-1])}" if found
                                                      else "") + f" ({path})", flush=True)
    pretrain.main(["--config", path])


def cells(study):
    """(row name, arm or None, evaluation, model, extra finetune flags) of every evaluated model, in table order."""
    rows = []
    for arm in study.arms:
        for evaluation in study.evaluations:
            flags = [] if evaluation == "finetune" else ["--probe", evaluation]
            rows.append((f"{arm}-{evaluation}", arm, evaluation, study.arm_directory(arm), flags))
    first = study.arm_directory(next(iter(study.arms)))
    if "random-init" in study.baselines:
        rows.append(("random-init-finetune", None, "finetune", f"random-init:{first}", []))
    if "onehot-cnn" in study.baselines:
        rows.append(("onehot-cnn", None, "finetune", "onehot-cnn", []))
    return rows


def evaluate(study):
    """{(task, row name): results.json of that cell}, every cell trained or reused."""
    flags = study.finetune_flags() + ["--seeds", *map(str, study.seeds), "--quiet"]
    results = {}
    for task in study.tasks:
        name = os.path.basename(os.path.normpath(task))
        for row, _, _, model, extra in cells(study):
            print(f"--- {name} / {row}", flush=True)
            directory = os.path.join(study.output_dir, "evaluation", name, row)
            results[(task, row)] = run_cell(task, model, directory, flags + extra)
    return results


def main(argv=None):
    args = parse_args(argv)
    study = read_study(args.config, args.output_dir)  # every refusal before anything is written
    with claim_output_directory(study.output_dir, "study"):
        plan = make_plan(study)
        for arm in study.arms:
            pretrain_arm(study, arm, plan["arms"][arm]["max_steps"])
        compute = {arm: arm_compute(study.arm_directory(arm), plan["arms"][arm]) for arm in study.arms}
        results = evaluate(study)
        return write_report(study, plan, compute, results, cells(study))


cli = one_line_errors(main)
