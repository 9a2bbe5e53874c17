"""The study's YAML: one pretraining preset, a compute budget, the arms (overrides of the preset), the pretraining
seeds, the tasks, the fine-tuning seeds and how each arm is evaluated.

    pretraining: training/configs/tiny.yaml     # the preset every arm starts from
    fasta: [genome.fa.gz]
    budget: {flops: 5.0e13}                      # or {tokens: N} or {seconds: N} (per arm)
    arms:
      electra: {}
      mlm: {objective: mlm}
      electra-randommask: {masking: randommask}
    pretraining_seeds: [1, 2, 3]                 # optional: each arm pretrained once per seed
    tasks: [../shared/data/gue/prom_core_tata]
    seeds: [42, 43, 44]                          # fine-tuning seeds of every cell
    evaluations: [finetune, linear, cnn]         # full fine-tuning, frozen linear and CNN probes
    baselines: [random-init, onehot-cnn]
    finetune: {max_steps: 3000, patience: 5}     # finetune.py options of every cell, the same for every row
    output_dir: runs/study

Pretraining seeds: the study owns the pretraining config's `seed` (an arm or `pretraining_overrides` that set it is
refused). Without `pretraining_seeds` every arm is pretrained once with the preset's own `seed`, in
`pretraining/<arm>/` (the layout of studies made before the key existed, which continue in place). With it, every
arm is pretrained once per listed seed, in `pretraining/<arm>/seed-<s>/`, at the arm's one budget (the same
steps for every seed), and every (arm x evaluation) row is evaluated for every pretraining seed with every
fine-tuning seed; a list of one seed uses the seed layout too, so seeds can be added to a study later.
"""

import dataclasses
import math
import os
import re

import yaml

from nucel.tasks import task_files
from nucel.training.finetuning import run as finetune
from nucel.training.pretraining.config import FIELDS, coerce, load_config, read_yaml

BUDGET_KINDS = ("tokens", "flops", "seconds")
EVALUATIONS = ("finetune", "linear", "cnn")  # fine-tuning every weight; the frozen probes (Tang & Koo)
BASELINES = ("random-init", "onehot-cnn")
# Keys the study sets for every arm: the budget decides max_steps, the study's folder holds the runs, and
# `pretraining_seeds` (or the preset's own seed) decides seed: an arm with its own seed would differ by it.
STUDY_OWNED_KEYS = frozenset({"max_steps", "output_dir", "fasta", "genome_store", "resume", "progress_bar", "seed"})
# finetune.py options the study sets per cell.
STUDY_OWNED_FINETUNE = frozenset({"model", "task_dir", "output_dir", "seeds", "probe", "quiet"})
ARM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclasses.dataclass
class StudyConfig:
    path: str
    pretraining: str
    budget_kind: str
    budget: float
    arms: dict
    tasks: list
    fasta: list = dataclasses.field(default_factory=list)
    pretraining_overrides: dict = dataclasses.field(default_factory=dict)
    seeds: list = dataclasses.field(default_factory=lambda: [42, 43, 44])
    evaluations: list = dataclasses.field(default_factory=lambda: list(EVALUATIONS))
    baselines: list = dataclasses.field(default_factory=lambda: list(BASELINES))
    finetune: dict = dataclasses.field(default_factory=dict)
    output_dir: str = "runs/study"
    # The seeds every arm is pretrained with (None: the preset's own seed, filled in below), and whether they were
    # given (`pretraining_seeds` in the YAML: the seed-<s>/ layout).
    pretraining_seeds: list = None
    seed_folders: bool = dataclasses.field(default=False, init=False)

    def __post_init__(self):
        self.seed_folders = self.pretraining_seeds is not None
        if self.pretraining_seeds is None:  # the preset's own seed (the study owns the key, so nothing overrides it)
            try:
                seed = read_yaml(self.pretraining).get("seed", FIELDS["seed"].default)
                self.pretraining_seeds = [coerce("seed", seed, int)]
            except ValueError as error:
                raise ValueError(f"{self.path}: pretraining: {error}") from None

    def runs(self):
        """(arm, pretraining seed) of every pretraining run, arm by arm."""
        return [(arm, seed) for arm in self.arms for seed in self.pretraining_seeds]

    def arm_directory(self, arm, seed):
        """pretraining/<arm>/ (no `pretraining_seeds` key) or pretraining/<arm>/seed-<s>/."""
        directory = os.path.join(self.output_dir, "pretraining", arm)
        return os.path.join(directory, f"seed-{seed}") if self.seed_folders else directory

    def arm_config_path(self, arm, seed):
        """arms/<arm>.yaml or arms/<arm>/seed-<s>.yaml: the run's full config."""
        if self.seed_folders:
            return os.path.join(self.output_dir, "arms", arm, f"seed-{seed}.yaml")
        return os.path.join(self.output_dir, "arms", f"{arm}.yaml")

    def cell_directory(self, task, row, seed):
        """evaluation/<task>/<row>/ of one cell, relative to output_dir; an arm row's cell per pretraining seed is
        evaluation/<task>/<row>/pretraining-seed-<s>/ in the seed layout (`seed` None: a baseline)."""
        directory = os.path.join("evaluation", os.path.basename(os.path.normpath(task)), row)
        return os.path.join(directory, f"pretraining-seed-{seed}") if self.seed_folders and seed is not None \
            else directory

    def arm_config(self, arm, max_steps, seed):
        """The run's PretrainConfig: preset, then the study-wide overrides, then the arm's, then the study's own
        keys (budgeted steps, pretraining seed, folders)."""
        owned = {"max_steps": max_steps, "seed": seed, "output_dir": self.arm_directory(arm, seed), "resume": True,
                 "progress_bar": False, "genome_store": os.path.join(self.output_dir, "genome-store"),
                 **({"fasta": self.fasta} if self.fasta else {})}
        overrides = {**self.pretraining_overrides, **self.arms[arm], **owned}
        try:
            return load_config(self.pretraining, list(overrides.items()))
        except ValueError as error:
            raise ValueError(f"{self.path}: arm {arm}: {error}") from None

    def finetune_flags(self):
        """The `finetune:` mapping as finetune.py options (`max_steps: 300` -> `--max-steps 300`)."""
        flags = []
        for key, value in self.finetune.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                flags.append(flag)
            elif isinstance(value, list):
                flags += [flag, *map(str, value)]
            elif value not in (False, None):
                flags += [flag, str(value)]
        return flags


def read_study(path, output_dir=None):
    """A validated StudyConfig from `path` (every refusal names the file and key); nothing is written."""
    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle)
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of study keys (pretraining, budget, arms, tasks, ...)")

    def fail(key, expected):
        raise ValueError(f"{path}: {key}={values.get(key)!r}: expected {expected}")

    fields = {field.name for field in dataclasses.fields(StudyConfig)} - {"path", "budget_kind", "seed_folders"}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; expected {', '.join(sorted(fields))}")
    for key in ("pretraining", "budget", "arms", "tasks"):
        if values.get(key) in (None, "", [], {}):
            fail(key, "a value (required)")
    if not isinstance(values["pretraining"], str) or not os.path.isfile(values["pretraining"]):
        fail("pretraining", "the path of a pretraining preset YAML, e.g. training/configs/tiny.yaml")
    budget = values.pop("budget")
    if not isinstance(budget, dict) or len(budget) != 1 or next(iter(budget)) not in BUDGET_KINDS:
        raise ValueError(f"{path}: budget={budget!r}: expected one of {{tokens: N}}, {{flops: N}}, {{seconds: N}}")
    (budget_kind, amount), = budget.items()
    try:  # YAML 1.1 reads 5e13 (no dot) as a string
        amount = float(amount)
    except (TypeError, ValueError):
        amount = -1.0
    if not (amount > 0 and math.isfinite(amount)):  # .inf would budget endless training; .nan no steps at all
        raise ValueError(f"{path}: budget.{budget_kind}={budget[budget_kind]!r}: expected a positive number (finite)")
    arms = values["arms"]
    if not isinstance(arms, dict):
        fail("arms", "a mapping of arm name -> overrides of the preset (e.g. mlm: {objective: mlm})")
    for arm, overrides in arms.items():
        if not isinstance(arm, str) or not ARM_NAME.match(arm):
            raise ValueError(f"{path}: arms: {arm!r}: expected a name of letters, digits, '.', '_' or '-'")
        if not isinstance(overrides, (dict, type(None))):
            raise ValueError(f"{path}: arms.{arm}: expected a mapping of preset keys (or {{}})")
        refuse_owned(path, f"arms.{arm}", overrides or {})
        arms[arm] = dict(overrides or {})
    for key, allowed in (("evaluations", EVALUATIONS), ("baselines", BASELINES)):
        chosen = values.get(key, list(allowed))
        if not isinstance(chosen, list) or set(chosen) - set(allowed) or len(set(chosen)) != len(chosen):
            fail(key, f"a list of distinct values from {', '.join(allowed)}")
    seeds = values.get("seeds", [42, 43, 44])
    if not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds) \
            or not all(isinstance(seed, int) and not isinstance(seed, bool) for seed in seeds):
        fail("seeds", "a list of distinct integers")
    for key in ("tasks", "fasta"):
        if not isinstance(values.get(key, []), list) or not all(isinstance(p, str) for p in values.get(key, [])):
            fail(key, "a list of paths")
    for key in ("finetune", "pretraining_overrides"):
        if not isinstance(values.get(key) or {}, dict):
            fail(key, "a mapping")
        values[key] = dict(values.get(key) or {})
    owned = sorted(STUDY_OWNED_FINETUNE & {key.replace("-", "_") for key in values["finetune"]})
    if owned:
        raise ValueError(f"{path}: finetune: {owned} are set by the study per cell")
    refuse_owned(path, "pretraining_overrides", values["pretraining_overrides"])
    seeds = values.get("pretraining_seeds")
    if "pretraining_seeds" in values and (
            not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
            or not all(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 for seed in seeds)):
        fail("pretraining_seeds", "a list of distinct non-negative integers (each arm is pretrained once per seed)")
    if output_dir:
        values["output_dir"] = output_dir
    study = StudyConfig(path=path, budget_kind=budget_kind, budget=amount, **values)
    names = {}
    for task in study.tasks:
        task_files(task)  # missing split files: one line naming the folder
        names.setdefault(os.path.basename(os.path.normpath(task)), []).append(task)
    for name, same in names.items():
        if len(same) > 1:
            raise ValueError(f"{path}: tasks: {' and '.join(same)} share the folder name {name!r}")
    try:  # finetune.py's own checks of the options, before anything trains
        finetune.parse_args(["--model", "onehot-cnn", "--task-dir", ".", "--output-dir", ".",
                             *study.finetune_flags()])
    except SystemExit:
        raise ValueError(f"{path}: finetune: {study.finetune} are not valid finetune.py options "
                         "(see `nucel finetune --help`)") from None
    except ValueError as error:
        raise ValueError(f"{path}: finetune: {error}") from None
    for arm in study.arms:
        study.arm_config(arm, max_steps=1, seed=study.pretraining_seeds[0])  # preset keys and values checked now
    return study


def refuse_owned(path, where, overrides):
    """One line naming the file and key when `overrides` sets a key the study sets itself."""
    if "seed" in overrides:
        raise ValueError(f"{path}: {where}.seed: set by the study, the same for every arm; list the pretraining "
                         "seeds in `pretraining_seeds: [...]` (default: the preset's seed)")
    owned = sorted(STUDY_OWNED_KEYS & set(overrides))
    if owned:
        raise ValueError(f"{path}: {where}: {owned} are set by the study (budget and folders)")
