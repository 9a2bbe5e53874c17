"""Fine-tune (or probe) a model on a benchmark task with `transformers.Trainer`; score test once, per seed.

    python training/finetune.py --model runs/demo/discriminator --task-dir ../shared/data/gue/prom_core_tata \
        --output-dir runs/ft/tata --seeds 42 43 44
    python training/finetune.py --model onehot-cnn --task-dir T --output-dir O          # the one-hot CNN baseline
    python training/finetune.py --model random-init:runs/demo/discriminator ...         # same shape, fresh weights
    python training/finetune.py --model runs/demo/discriminator --probe linear ...      # frozen-embedding probe
    torchrun --nproc_per_node 4 training/finetune.py --model ... --bf16 ...             # data-parallel, 4 GPUs

--model: a local NucEL folder (a pretraining export; a pretraining run folder means its discriminator/), a Hub id,
`random-init[:FOLDER]` (NucEL with fresh weights: FOLDER's config, or the published 512 x 22 shape) or `onehot-cnn`.
--task-dir: a folder of train/[dev/]test .csv/.tsv(.gz) files or a `datasets.load_dataset` path (Hub dataset id,
local dataset folder); without dev, 10% of train (seeded) becomes dev (nucel/tasks.py). Trainer
settings users tune have flags (--bf16/--fp16, --gradient-accumulation-steps, --gradient-checkpointing,
--report-to); any other `TrainingArguments` field is `--training-arg NAME=VALUE`. Defaults follow the GUE protocol
(AdamW, batch 32, dev evaluated every 200 steps, the best dev checkpoint kept and test scored once at the end)
trained to convergence, the same rule for every model (Tang & Koo: a baseline is only a baseline when it was trained
as well as it can be): --epochs / --max-steps is a maximum (default 20 epochs) and training stops when dev has not
improved for --patience evaluations (training/finetuning/stopping.py). A seed that reaches the maximum while dev
is still improving is reported as under-trained (marked † in tables). Learning rate for the model's size: GUE's
3e-5 belongs to 768-wide encoders, and Adam's best step shrinks with width, so a pretrained or random-init encoder
gets 3e-5 x 768 / hidden_size (1.8e-4 at 128, 4.5e-5 for the published 512-wide model); the CNN and probe heads,
which start from scratch, 1e-3. `--lr auto` picks among that value x 1/3, 1 and 3 on dev (first seed), then trains
every seed with it; `--lr X` pins it. Warmup: 50 steps, or a tenth of a shorter run. The choice is recorded in
results.json (`learning_rate`).

Writes to --output-dir: results.json (per seed and mean ± sd, each seed's dev curve and how it stopped, the
protocol, the exact config, data checksums and package versions), predictions.csv (test, every seed) and model/
(the best-dev seed's model with its tokenizer; for a probe the head only).

Here: the options, the seed loop and the --lr search; the model each seed trains and model/ are models.py's, what
results.json and predictions.csv hold is records.py's.
"""

import argparse
import contextlib
import dataclasses
import os
import re
import shutil
import sys
import tempfile
import time

import numpy as np
import torch
import yaml
from datasets import Dataset
from transformers import (
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    PretrainedConfig,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.integrations import TensorBoardCallback

from nucel.commands import first_paragraph, is_main_rank, one_line_errors
from nucel.console import add_output_options, apply_output_options
from nucel.modeling_nucel import NucELConfig
from nucel.outputs import check_distinct, clean_leftovers, commit, remove, temporary_path
from nucel.run_directory import check_output_directory, claim_output_directory, kind_of
from nucel.run_records import UNDER_TRAINED_MARK, mark, under_trained_seeds
from nucel.safe_loading import load_model_config
from nucel.tasks import DEFAULT_DEV_FRACTION, DEFAULT_SPLIT_SEED, LABEL_TYPES, Task, load_task, tokenize_split
from nucel.training.finetuning.baselines import PROBES
from nucel.training.finetuning.metrics import PRIMARY_METRIC, score, trainer_metrics
from nucel.training.finetuning.models import build_task_model, build_tokenizer, max_tokens, resolve_model, save_model
from nucel.training.finetuning.progress import show_progress
from nucel.training.finetuning.records import (
    describe_model,
    run_results,
    saved_model_record,
    seed_record,
    write_predictions,
    write_results,
)
from nucel.training.finetuning.stopping import DEFAULT_MIN_DELTA, DEFAULT_PATIENCE

# GUE's learning rate and the width it was tuned at (DNABERT-2, 768); heads that start from scratch take 1e-3.
GUE_LEARNING_RATE, GUE_HIDDEN_SIZE, HEAD_LEARNING_RATE = 3e-5, 768, 1e-3
# `--lr auto`: these multiples of the width rule's value are tried on dev.
LR_SEARCH_FACTORS = (1 / 3, 1.0, 3.0)
DEFAULT_WARMUP_STEPS = 50
DEFAULT_MAX_EPOCHS = 20.0  # a ceiling: early stopping on dev ends training
# Fields that upload or carry credentials: a token would be written into results.json with every argument.
PUBLISHING_TRAINING_ARGUMENT = re.compile(r"^hub_|^push_to_hub|token$")
# TrainingArguments fields this script sets from its own options and protocol (best dev checkpoint, test once).
MANAGED_TRAINING_ARGUMENTS = frozenset({
    "output_dir", "seed", "data_seed", "learning_rate", "per_device_train_batch_size", "per_device_eval_batch_size",
    "num_train_epochs", "max_steps", "warmup_steps", "weight_decay", "eval_strategy", "eval_steps", "save_strategy",
    "save_steps", "save_only_model", "save_total_limit", "load_best_model_at_end", "metric_for_best_model",
    "greater_is_better", "logging_strategy", "logging_steps", "disable_tqdm", "use_cpu", "bf16", "fp16",
    "report_to", "gradient_accumulation_steps", "gradient_checkpointing", "activation_checkpointing", "do_train",
    "do_eval", "do_predict",
})


# --dtype VALUE (what the inference commands call it) -> the precision flag it stands for
DTYPE_FLAGS = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=first_paragraph(__doc__))
    parser.add_argument("--model", required=True, help="NucEL folder, Hub id, random-init[:FOLDER] or onehot-cnn")
    parser.add_argument("--task-dir", required=True,
                        help="folder with train/[dev/]test .csv/.tsv(.gz), or a datasets.load_dataset path (Hub "
                             "dataset id or local dataset folder)")
    parser.add_argument("--dataset-config", default=None, help="configuration name of a load_dataset --task-dir")
    parser.add_argument("--sequence-column", default="sequence")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--dev-fraction", type=float, default=DEFAULT_DEV_FRACTION,
                        help="share of train carved out as dev when the task has no dev split")
    parser.add_argument("--split-seed", type=int, default=DEFAULT_SPLIT_SEED,
                        help="seed of that carving (the same dev rows for every training seed)")
    parser.add_argument("--output-dir", required=True)
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=float, default=None,
                        help=f"the most epochs a seed trains (default {DEFAULT_MAX_EPOCHS:g}; it stops earlier "
                             "when dev stops improving)")
    length.add_argument("--max-steps", type=int, default=None,
                        help="the most optimizer steps a seed trains (instead of --epochs)")
    parser.add_argument("--patience", type=int, default=DEFAULT_PATIENCE,
                        help="stop when dev has not improved for this many evaluations (default %(default)s; "
                             "0: train to the maximum, a fixed budget)")
    parser.add_argument("--min-delta", type=float, default=DEFAULT_MIN_DELTA,
                        help="an improvement of dev's primary metric must exceed this (default %(default)s)")
    parser.add_argument("--lr", type=learning_rate_option, default=None,
                        help=f"peak learning rate, or `auto` (the best on dev of the default x "
                             f"{', '.join(f'{f:.3g}' for f in LR_SEARCH_FACTORS)}); default: {GUE_LEARNING_RATE} x "
                             f"{GUE_HIDDEN_SIZE} / hidden_size for an encoder, {HEAD_LEARNING_RATE} for onehot-cnn "
                             "and --probe, whose weights start from scratch")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup-steps", type=int, default=None,
                        help=f"default {DEFAULT_WARMUP_STEPS}, or a tenth of a run shorter than "
                             f"{10 * DEFAULT_WARMUP_STEPS} steps")
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--eval-steps", type=int, default=200, help="evaluate dev (and checkpoint) every N steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--label-type", choices=LABEL_TYPES, default=None,
                        help="override the label type detected from the training labels")
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters (peft) instead of every weight")
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--probe", choices=PROBES, default=None,
                        help="freeze the encoder; train a linear head or a CNN on its embeddings (Tang & Koo)")
    parser.add_argument("--probe-layer", type=int, default=-1, help="layer the probe reads (-1: the last)")
    parser.add_argument("--pooling", choices=("mean", "cls"), default="mean",
                        help="sequence pooling of the NucEL classifier (ELECTRA never trains [CLS] on its own)")
    parser.add_argument("--truncate", action="store_true", help="cut sequences longer than the model's maximum")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow a non-NucEL model folder or Hub id to run its own code (never needed for NucEL)")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--bf16", action="store_true", default=None,
                           help="bf16 mixed precision (default: on for CUDA GPUs that support it)")
    precision.add_argument("--fp16", action="store_true", help="fp16 mixed precision (CUDA)")
    precision.add_argument("--fp32", action="store_true", help="no mixed precision, even on a GPU")
    precision.add_argument("--dtype", choices=("auto", *DTYPE_FLAGS),
                           help="the inference commands' name for these: float32 = --fp32, bfloat16 = --bf16, "
                                "float16 = --fp16, auto = none of them")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: a GPU when there is one (torchrun: each process's own); cpu: even on a GPU machine")
    parser.add_argument("--gradient-accumulation-steps", type=int, default=1)
    parser.add_argument("--gradient-checkpointing", action="store_true",
                        help="recompute activations in the backward pass (less memory, ~30%% more time)")
    parser.add_argument("--report-to", nargs="+", default=["none"],
                        help="Trainer loggers: none, tensorboard, wandb, ... (logs land in <output-dir>/logs)")
    parser.add_argument("--training-arg", action="append", default=[], metavar="NAME=VALUE",
                        help="any other transformers.TrainingArguments field (value read as YAML), repeatable, "
                             "e.g. --training-arg lr_scheduler_type=cosine --training-arg max_grad_norm=0.5")
    add_output_options(parser)
    args = parser.parse_args(argv)
    if args.dtype in DTYPE_FLAGS:  # one more spelling of a precision flag: recorded (results.json) as that flag
        setattr(args, DTYPE_FLAGS[args.dtype], True)
    del args.dtype
    args.training_arg = parse_training_args(args.training_arg)
    if args.epochs is None and args.max_steps is None:
        args.epochs = DEFAULT_MAX_EPOCHS
    if args.patience < 0 or not args.min_delta >= 0:
        raise ValueError(f"--patience {args.patience} / --min-delta {args.min_delta}: expected numbers >= 0")
    for name in ("batch_size", "eval_steps", "lora_rank", "gradient_accumulation_steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} {getattr(args, name)}: expected a positive integer")
    if args.max_steps is not None and args.max_steps < 1 or args.epochs is not None and args.epochs <= 0:
        raise ValueError("--epochs / --max-steps: expected a positive number")
    if len(set(args.seeds)) != len(args.seeds):
        raise ValueError(f"--seeds {args.seeds}: a seed is repeated")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: CUDA is not available on this machine")
    return args


def learning_rate_option(text):
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number or auto") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number")
    return value


def parse_training_args(items):
    """{field: value} from NAME=VALUE strings naming `TrainingArguments` fields this script does not manage."""
    known = {field.name for field in dataclasses.fields(TrainingArguments)}
    parsed = {}
    for item in items:
        name, equals, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not equals or not name:
            raise ValueError(f"--training-arg {item!r}: expected NAME=VALUE")
        if PUBLISHING_TRAINING_ARGUMENT.search(name):
            raise ValueError(f"--training-arg {name}: refused: fine-tuning never pushes to the Hub or takes a token "
                             "(it would be recorded in results.json); publish the model/ with nucel publish --push")
        if name not in known:
            raise ValueError(f"--training-arg {name}: not a transformers.TrainingArguments field")
        if name in MANAGED_TRAINING_ARGUMENTS:
            raise ValueError(f"--training-arg {name}: set by this script's own options (see --help); the best dev "
                             "checkpoint and the single test scoring depend on it")
        try:
            parsed[name] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ValueError(f"--training-arg {item!r}: the value is not valid YAML") from None
    return parsed




@dataclasses.dataclass(frozen=True)
class Schedule:
    """The learning rate and warmup a seed trains with, as resolved from the options (`args` keeps them as given):
    --lr pinned, its default rule or the dev search's choice; --warmup-steps or its default."""
    learning_rate: float
    warmup_steps: int


# ----------------------------------------------------------------------------------------------- the data
def build_datasets(task: Task, tokenizer, limit: int | None, truncate: bool) -> dict:
    """One `datasets.Dataset` per split: input_ids ([CLS] ... [SEP]) and labels."""
    datasets = {}
    for name, split in task.splits.items():
        input_ids = tokenize_split(split, tokenizer, limit or float("inf"), truncate)
        datasets[name] = Dataset.from_dict({"input_ids": input_ids, "labels": split.labels.tolist()})
    return datasets


# ----------------------------------------------------------------------------------------------- one seed
def training_arguments(args: argparse.Namespace, schedule: Schedule, seed: int, output_dir: str, total_steps: int,
                       primary: str) -> TrainingArguments:
    eval_steps = min(args.eval_steps, total_steps)
    cuda = torch.cuda.is_available() and args.device != "cpu"
    bf16 = args.bf16 if args.bf16 is not None else (cuda and torch.cuda.is_bf16_supported() and not args.fp16
                                                     and not args.fp32)
    values = dict(
        output_dir=output_dir, seed=seed, data_seed=seed, learning_rate=schedule.learning_rate,
        per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=2 * args.batch_size,
        num_train_epochs=args.epochs or 1, max_steps=args.max_steps or -1, warmup_steps=schedule.warmup_steps,
        weight_decay=args.weight_decay, lr_scheduler_type="linear",
        eval_strategy="steps", eval_steps=eval_steps, save_strategy="steps", save_steps=eval_steps,
        save_only_model=True, save_total_limit=1, load_best_model_at_end=True,
        metric_for_best_model=primary, greater_is_better=True,
        logging_strategy="steps", logging_steps=eval_steps, report_to=args.report_to, disable_tqdm=True,
        bf16=bool(bf16), fp16=args.fp16, use_cpu=not cuda, dataloader_num_workers=0,
        gradient_accumulation_steps=args.gradient_accumulation_steps)
    fields = {field.name for field in dataclasses.fields(TrainingArguments)}
    # transformers 5.x renamed gradient_checkpointing (a deprecated alias until v6)
    values["activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"] = \
        args.gradient_checkpointing
    if "logging_dir" in fields:  # transformers 4.x
        values["logging_dir"] = logging_directory(args, seed)
    values.update(args.training_arg)
    return TrainingArguments(**values)


def logging_directory(args: argparse.Namespace, seed: int) -> str:
    """Where --report-to loggers write: inside --output-dir (the Trainer's own output_dir is scratch)."""
    return os.path.join(args.output_dir, "logs", f"seed-{seed}")


def log_tensorboard_to(trainer: Trainer, directory: str) -> None:
    """transformers 5.x's TensorBoard logger takes its folder from TENSORBOARD_LOGGING_DIR when the Trainer builds
    it, and without one writes inside the Trainer's output_dir (scratch here): a logger given no folder is pointed
    at `directory`. (4.x's reads TrainingArguments.logging_dir, which training_arguments sets.)"""
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback) and hasattr(callback, "logging_dir") \
                and not callback.logging_dir:
            callback.logging_dir = directory


def total_optimizer_steps(args: argparse.Namespace, train_rows: int) -> int:
    if args.max_steps:
        return args.max_steps
    world = int(os.environ.get("WORLD_SIZE", "1"))
    per_epoch = np.ceil(train_rows / (args.batch_size * world * args.gradient_accumulation_steps))
    return max(1, int(np.ceil(args.epochs * per_epoch)))


def run_seed(args: argparse.Namespace, schedule: Schedule, kind: str, location: str | None, task: Task,
             datasets: dict, tokenizer, seed: int, work_dir: str, model_config: PretrainedConfig | None = None,
             score_test: bool = True) -> tuple:
    """Train one seed, keep its best dev checkpoint, score dev (and test, unless `score_test` is False) with it:
    (its record, the trained model, its test logits or None)."""
    set_seed(seed)
    model = build_task_model(args, kind, location, task, model_config)
    primary = PRIMARY_METRIC[task.label_type]
    total_steps = total_optimizer_steps(args, len(datasets["train"]))
    trainer = Trainer(model=model, args=training_arguments(args, schedule, seed, work_dir, total_steps, primary),
                      train_dataset=datasets["train"], eval_dataset=datasets["dev"],
                      data_collator=DataCollatorWithPadding(tokenizer),
                      compute_metrics=trainer_metrics(task.label_type),
                      callbacks=[EarlyStoppingCallback(args.patience, args.min_delta)] if args.patience else None)
    log_tensorboard_to(trainer, logging_directory(args, seed))
    # our bar (training/finetuning/progress.py) instead of the Trainer's printed dicts and per-evaluation bars
    shown = show_progress(trainer, f"seed {seed}" if score_test else f"lr {schedule.learning_rate:g}, seed {seed}",
                          primary)
    frozen = {k: v.clone() for k, v in model.encoder.state_dict().items()} if args.probe else None
    started = time.time()
    try:
        trainer.train()
    finally:
        shown.close()
    runtime = time.time() - started
    if frozen is not None and any(not torch.equal(frozen[k], v) for k, v in model.encoder.state_dict().items()):
        raise RuntimeError("probe: an encoder weight changed during training")  # a bug, never bad input

    record = seed_record(seed, trainer.state, primary, runtime, args.patience, args.min_delta)
    dev = trainer.predict(datasets["dev"])
    record["dev"] = score(task.label_type, dev.label_ids, dev.predictions)
    if not score_test:
        return record, trainer.model, None
    test = trainer.predict(datasets["test"])
    record["test"] = score(task.label_type, test.label_ids, test.predictions)
    return record, trainer.model, test.predictions


# ----------------------------------------------------------------------------------------------- main
def main(argv: list | None = None) -> dict | None:
    args = parse_args(argv)
    apply_output_options(args)
    check_output_directory(args.output_dir, "finetune")  # every refusal before anything is written
    if os.path.isdir(args.output_dir) and kind_of(args.output_dir)[0] != "finetune" \
            and os.path.lexists(os.path.join(args.output_dir, "model")):
        raise ValueError(f"--output-dir {args.output_dir}: holds a model/ that no fine-tuning run wrote; choose "
                         "another --output-dir (nothing was written)")
    kind, location = resolve_model(args.model)
    check_distinct({"--output-dir": args.output_dir}, {
        "--model": location if location and os.path.isdir(location) else None,
        "--task-dir": args.task_dir if os.path.isdir(args.task_dir) else None})
    if (args.probe or args.lora) and kind != "pretrained":
        raise ValueError(f"--{'probe' if args.probe else 'lora'} needs a pretrained model, not {args.model}")
    if args.probe and args.lora:
        raise ValueError("--probe and --lora exclude each other (a probe trains no encoder weight)")

    task = load_task(args.task_dir, args.label_type, args.sequence_column, args.label_column, args.dev_fraction,
                     args.split_seed, args.dataset_config)
    model_config = load_model_config(location, args.trust_remote_code) if location else None
    tokenizer = build_tokenizer(location, args.trust_remote_code)
    limit = max_tokens(kind, model_config or NucELConfig(), tokenizer)
    datasets = build_datasets(task, tokenizer, limit, args.truncate)
    say(f"{task.name}: {task.label_type}, {task.num_labels} label(s), "
        f"{', '.join(f'{n} {len(s)}' for n, s in task.splits.items())}"
        + (f" (dev: {task.carved_dev['fraction']:g} of train, split seed {task.carved_dev['seed']})"
           if task.carved_dev else "") + f"; model {args.model} ({kind})")

    total_steps = total_optimizer_steps(args, len(datasets["train"]))
    warmup_steps = args.warmup_steps
    if warmup_steps is None:
        warmup_steps = min(DEFAULT_WARMUP_STEPS, total_steps // 10)
    elif warmup_steps >= total_steps and is_main_rank():
        print(f"warning: --warmup-steps {warmup_steps} >= the run's {total_steps} optimizer steps: the learning "
              "rate never reaches its peak", file=sys.stderr, flush=True)
    default, rule = default_learning_rate(kind, args.probe,
                                          model_config or (NucELConfig() if kind == "random-init" else None))
    if args.lr == "auto":
        learning_rate = {"chosen_by": "dev search (--lr auto)",
                         "candidates": [float(f"{default * factor:.3g}") for factor in LR_SEARCH_FACTORS]}
    elif args.lr is None:
        learning_rate = {"chosen_by": rule, "value": default}
    else:
        learning_rate = {"chosen_by": "--lr", "value": args.lr}

    # A distributed launch (torchrun / accelerate launch) trains on every rank; rank 0 alone owns the folder.
    owner = claim_output_directory(args.output_dir, "finetune") if is_main_rank() else contextlib.nullcontext()
    with owner:
        return train_and_report(args, argv, kind, location, model_config, task, datasets, tokenizer, learning_rate,
                                warmup_steps)


def default_learning_rate(kind: str, probe: str | None, model_config: PretrainedConfig | None) -> tuple:
    """(learning rate, the rule that gave it) for a model that --lr does not pin."""
    if kind == "onehot-cnn" or probe:
        return HEAD_LEARNING_RATE, "head default (its weights start from scratch)"
    width = getattr(model_config, "hidden_size", None)
    if not isinstance(width, int) or width < 1:
        return GUE_LEARNING_RATE, "GUE default (the model's config has no hidden_size)"
    return float(f"{GUE_LEARNING_RATE * GUE_HIDDEN_SIZE / width:.3g}"), \
        f"width rule: {GUE_LEARNING_RATE:g} x {GUE_HIDDEN_SIZE} / hidden_size {width}"


def search_learning_rate(candidates: list, dev_score, primary: str) -> tuple:
    """`--lr auto`: the candidate whose first-seed run scores best on dev (`dev_score(lr)`: the dev metrics; test
    is never scored), and every candidate's dev metrics."""
    tried = [{"lr": candidate, "dev": dev_score(candidate)} for candidate in candidates]
    return max(tried, key=lambda entry: entry["dev"][primary])["lr"], tried


def say(message: str) -> None:
    if is_main_rank():
        print(message, flush=True)


def scratch_directory(output_dir: str) -> str:
    """The checkpoints of this run (removed at its end). Every rank of a distributed launch loads the best one, so
    all name the same folder, after the launch's run id; rank 0 creates it."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return tempfile.mkdtemp(prefix=".checkpoints-", dir=output_dir)
    launch = re.sub(r"\W", "_", os.environ.get("TORCHELASTIC_RUN_ID", "distributed"))
    path = os.path.join(output_dir, f".checkpoints-{launch}")
    if is_main_rank():
        os.makedirs(path, exist_ok=True)
    return path


def train_and_report(args: argparse.Namespace, argv: list | None, kind: str, location: str | None,
                     model_config: PretrainedConfig | None, task: Task, datasets: dict, tokenizer,
                     learning_rate: dict, warmup_steps: int) -> dict | None:
    """Every seed in scratch checkpoints of our own, then results.json, predictions.csv and model/.
    `learning_rate`: {"chosen_by", "value"}, or {"chosen_by", "candidates"} for the dev search to choose from."""
    records, logits, best = [], [], None
    primary = PRIMARY_METRIC[task.label_type]
    main_rank = is_main_rank()
    # model/, predictions.csv and results.json are committed together at the end, results.json last: a run
    # killed part-way never leaves a new model/ beside the results of an old one.
    finals = [os.path.join(args.output_dir, name) for name in ("model", "predictions.csv", "results.json")]
    staged = [temporary_path(final) for final in finals]
    if main_rank:
        for final in finals:
            clean_leftovers(final)
    scratch = scratch_directory(args.output_dir)  # ours: removed at the end
    try:
        if "candidates" in learning_rate:
            seed = args.seeds[0]

            def dev_score(candidate):
                work_dir = os.path.join(scratch, f"lr-{candidate:g}-seed-{seed}")
                record = run_seed(args, Schedule(candidate, warmup_steps), kind, location, task, datasets,
                                  tokenizer, seed, work_dir, model_config, score_test=False)[0]
                if main_rank:
                    shutil.rmtree(work_dir)
                say(f"--lr auto: lr {candidate:g}, seed {seed}: dev {primary} {record['dev'][primary]:.4f}")
                return record["dev"]

            chosen, tried = search_learning_rate(learning_rate["candidates"], dev_score, primary)
            learning_rate = {**learning_rate, "value": chosen, "search": tried}
        schedule = Schedule(learning_rate["value"], warmup_steps)
        say(f"learning rate {schedule.learning_rate:g} ({learning_rate['chosen_by']}), "
            f"warmup {schedule.warmup_steps} steps")
        for seed in args.seeds:
            work_dir = os.path.join(scratch, f"seed-{seed}")
            record, model, test_logits = run_seed(args, schedule, kind, location, task, datasets, tokenizer, seed,
                                                  work_dir, model_config)
            records.append(record)
            logits.append((seed, test_logits))
            if best is None or record["dev"][primary] > best["dev"][primary]:
                best = record
                if main_rank:
                    save_model(model, tokenizer, staged[0], args.model)
                described = describe_model(kind, location, model, model_config)
            if main_rank:  # every rank has scored test (a collective step), so the checkpoint is no longer read
                shutil.rmtree(work_dir)  # the best checkpoint is loaded and saved; the rest is scratch
            stopping = record["stopping"]
            ended = (f"stopped early at step {stopping['steps']}" if stopping["stopped"] == "early" else
                     f"reached the maximum, {stopping['steps']} steps"
                     + (f", dev still improving {UNDER_TRAINED_MARK}" if stopping["still_improving"] else ""))
            say(f"seed {seed}: dev {primary} {record['dev'][primary]:.4f} (best step {record['best_step']}; {ended}), "
                f"test {primary} {record['test'][primary]:.4f}")
        if not main_rank:
            return None
        results = run_results(args, argv if argv is not None else sys.argv[1:], task, described,
                              saved_model_record(staged[0], best["seed"]), learning_rate, schedule.warmup_steps,
                              total_optimizer_steps(args, len(datasets["train"])), records)
        write_predictions(staged[1], task, logits)
        write_results(staged[2], results)
        commit(list(zip(staged, finals)))
    finally:
        if main_rank:
            shutil.rmtree(scratch, ignore_errors=True)
            for path in staged:
                remove(path)
    test = results["test"][primary]
    print(f"{task.name} / {args.model}: test {primary} {test['mean']:.4f}"
          + (f" ± {test['sd']:.4f}" if test["sd"] is not None else "") + f"{mark(results)} over {len(records)} "
          f"seed(s); wrote {args.output_dir}/results.json, predictions.csv, model/", flush=True)
    if under_trained_seeds(results):
        print(f"warning: seed(s) {', '.join(map(str, under_trained_seeds(results)))} reached the maximum "
              f"({records[0]['stopping']['max_steps']} steps) while dev was still improving: under-trained "
              f"({UNDER_TRAINED_MARK}); raise --epochs / --max-steps", file=sys.stderr, flush=True)
    return results


cli = one_line_errors(main)
