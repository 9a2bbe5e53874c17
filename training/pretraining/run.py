"""Pretrain NucEL: ELECTRA (generator + discriminator) or the MLM baseline, with accelerate.

    accelerate launch training/pretrain.py --config training/configs/tiny.yaml --fasta genome.fa.gz
    python training/pretrain.py --config training/configs/tiny.yaml --fasta a.fa.gz b.fa.gz --objective mlm
    accelerate launch training/pretrain.py --config training/configs/tiny.yaml --output-dir runs/x --resume

Any config key can be overridden: `--masking randommask --mask-rate 0.2 --hidden-size 128` (see
training/pretraining/config.py; `--help` lists every key). The pieces it assembles are built in build.py.
Writes to --output-dir: metrics.jsonl, metrics.png, checkpoints/step-N/ (accelerate state, written atomically),
tensorboard/ (with --report-to tensorboard), and at the end discriminator/ + generator/ (electra) or mlm/ (mlm):
Hub-ready folders with config (auto_map), safetensors, tokenizer files and the remote-code .py files.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, broadcast_object_list, set_seed

from nucel import console
from nucel.commands import one_line_errors
from nucel.run_directory import check_output_directory, claim_output_directory
from nucel.tokenization.prepare_genome import describe_sources, load_index, prepare_genome, sources_checksum
from nucel.training.pretraining.batches import MaskedWindowBatches, batch_loader, validation_batches
from nucel.training.pretraining.build import (
    build_data,
    build_masker,
    build_model,
    build_optimizer,
    evaluate,
    optimizer_step,
    repeat_weight,
    resolve_runtime,
)
from nucel.training.pretraining.checkpoints import (
    checkpoint_directories,
    load_checkpoint,
    read_progress,
    save_checkpoint,
)
from nucel.training.pretraining.compute import check_memory, flops_per_token, peak_flops, run_estimate, tokens_per_step
from nucel.training.pretraining.config import describe_keys, incompatible_change, load_config
from nucel.training.pretraining.corpus import realised_token_shares
from nucel.training.pretraining.distributed import check_fsdp_launch, use_fsdp_on_cpu
from nucel.training.pretraining.masking import STRATEGIES
from nucel.training.pretraining.metrics_log import MetricsLog, not_learned
from nucel.training.pretraining.objectives import LOSS_PART_SLOTS, OBJECTIVES, export_with_tokenizer

# --------------------------------------------------------------------------------------------- configuration
# --dtype VALUE -> the config's mixed_precision (what accelerate calls it)
MIXED_PRECISION_OF_DTYPE = {"float32": "no", "bfloat16": "bf16", "float16": "fp16"}


def parse_config(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=describe_keys())
    parser.add_argument("--config", help="YAML preset, e.g. training/configs/tiny.yaml")
    parser.add_argument("--fasta", nargs="+", help="one or more FASTA files (.fa, .fa.gz); species may be mixed")
    parser.add_argument("--corpus", help="a corpus manifest (YAML): genomes with sampling weights, instead of --fasta "
                                         "(training/pretraining/corpus.py)")
    parser.add_argument("--output-dir")
    parser.add_argument("--max-steps", help="optimizer steps (an integer; 1e3 works)")
    parser.add_argument("--objective", choices=OBJECTIVES)
    parser.add_argument("--masking", choices=STRATEGIES)
    parser.add_argument("--resume", action="store_true", default=None,
                        help="continue from the latest complete checkpoint in --output-dir")
    parser.add_argument("--report-to", choices=("none", "tensorboard"))
    # The names every command gives these (inference's --batch-size, --dtype), for the config keys they set
    parser.add_argument("--batch-size", dest="per_device_batch_size",
                        help="windows per forward pass on each process (config per_device_batch_size; the "
                             "optimizer's global_batch_size stays, gradient accumulation makes up the rest)")
    parser.add_argument("--dtype", choices=("auto", *MIXED_PRECISION_OF_DTYPE),
                        help="config mixed_precision: float32 = no, bfloat16 = bf16, float16 = fp16, auto = auto")
    console.add_output_options(parser)
    args, rest = parser.parse_known_args(argv)
    console.apply_output_options(args)
    # --progress-bar on/off is the config's progress_bar key (a YAML `progress_bar: false` means off); auto keeps it
    args.progress_bar = None if args.progress_bar == "auto" else str(args.progress_bar == "on").lower()
    del args.quiet
    if args.dtype is not None:
        # quoted, as overrides are read as YAML, which reads a bare `no` as False
        args.mixed_precision = json.dumps(MIXED_PRECISION_OF_DTYPE.get(args.dtype, args.dtype))
    del args.dtype
    overrides = [(key, value) for key, value in vars(args).items() if key != "config" and value is not None]
    if len(rest) % 2 or any(not key.startswith("--") for key in rest[::2]):
        parser.error(f"unrecognized arguments {' '.join(rest)}: expected --key value pairs of config keys")
    overrides += list(zip(rest[::2], rest[1::2]))
    return load_config(args.config, overrides)


# ------------------------------------------------------------------------------------------------------ data
def planned_sources(config):
    """The sources (path, size, SHA-256) the run's genome store will hold: the FASTA files, or a prepared store's."""
    if config.fasta:
        return describe_sources(config.fasta)
    index = load_index(config.store_directory)
    if index is None:
        raise ValueError(f"config genome_store={config.store_directory}: no prepared store there (index.json)")
    return index["sources"]


def on_main_process(accelerator, work):
    """`work()` on the main process only; a ValueError there stops every rank with the same message (none
    hangs). Returns its result on the main process, None elsewhere."""
    result, error, failure = None, None, None
    if accelerator.is_main_process:
        try:
            result = work()
        except Exception as caught:  # noqa: BLE001  (broadcast first, so the other ranks never wait forever)
            failure, error = caught, str(caught)
    error = broadcast_object_list([error])[0]
    if failure is not None:
        raise failure
    if error is not None:
        raise ValueError(error)
    return result


def open_run(config, accelerator, precision):
    """Every refusal first, with nothing written (output directory, inputs, resume point, memory); then the
    directory is claimed (created, locked, marked) and the genome store built. Main process only; returns
    (lock, resume checkpoint or None, its progress or None)."""
    check_output_directory(config.output_dir, "pretrain")
    sources = planned_sources(config)  # hashed once: checked against the checkpoint, then handed to the store
    genome_checksum = sources_checksum(sources)
    find_resume_point(config, genome_checksum)
    check_memory(config, accelerator.device, precision,
                 processes_sharing=int(os.environ.get("LOCAL_WORLD_SIZE", accelerator.num_processes))
                 if accelerator.device.type == "cpu" else 1)
    lock = claim_output_directory(config.output_dir, "pretrain")
    try:
        resume_from, progress = find_resume_point(config, genome_checksum)  # again, now under the lock
        if config.fasta:
            prepare_genome(config.fasta, config.store_directory, log=accelerator.print, sources=sources)
    except BaseException:
        lock.release()
        raise
    return lock, resume_from, progress


def describe(evaluation):
    return ", ".join(f"{key[len('eval_'):]} {value:.4f}" for key, value in evaluation.items() if value is not None)


# The validation numbers a progress bar shows (describe() gives them all): masked-base accuracy, replaced-token AUC
HEADLINE = {"eval_generator_accuracy": "gen acc", "eval_mlm_accuracy": "mlm acc", "eval_discriminator_auc": "auc"}


def headline(evaluation):
    return {name: f"{evaluation[key]:.3f}" for key, name in HEADLINE.items() if evaluation.get(key) is not None}


# ------------------------------------------------------------------------------------------------ checkpoints
def find_resume_point(config, genome_checksum):
    """The latest complete checkpoint and its progress, after checking it belongs to this run; or (None, None).
    Read-only, so it runs before anything is written."""
    found = checkpoint_directories(config.output_dir)
    if not config.resume:
        if found:
            raise ValueError(f"{config.output_dir}: already holds checkpoints ({os.path.basename(found[-1])}); "
                             "pass --resume to continue that run or choose another --output-dir")
        return None, None
    if not found:
        return None, None
    progress = read_progress(found[-1])
    change = incompatible_change(progress["config"], config.to_dict())
    if change:
        key, saved, current = change
        raise ValueError(f"--resume: {found[-1]} was trained with {key}={saved!r}, this run has {key}={current!r}; "
                         "resume with the same config or choose another --output-dir")
    if progress["genome_checksum"] != genome_checksum:
        raise ValueError(f"--resume: {found[-1]} was trained on a different genome (store checksum "
                         f"{progress['genome_checksum']} != {genome_checksum}); resume with the same FASTA files")
    return found[-1], progress


def corpus_summary(config, train_windows, train_batches, step, accumulation):
    """Each genome of the run (one genome: the FASTA files): its files, weight, training windows, target share and
    realised share of the tokens trained on (pretraining_summary.json; the model card shows it)."""
    tokens, realised = realised_token_shares(
        train_windows, train_batches.items_per_epoch, step * accumulation * train_batches.batch_size
        * train_batches.world_size, config.crop_length + 2)
    windows = np.bincount(train_windows.genome_ids, minlength=len(tokens))
    genomes = config.corpus["genomes"] if config.corpus else [
        {"name": "genome", "fasta": config.fasta or [config.store_directory], "weight": 1.0, "group": None}]
    targets = train_windows.mixture.shares if train_windows.mixture is not None else windows / windows.sum()
    return {"sampling": config.corpus["sampling"] if config.corpus else "size",
            "repeat_weight": config.repeat_weight, "max_repeat_fraction": config.max_repeat_fraction,
            "genomes": [{"name": genome["name"], "fasta": genome["fasta"], "weight": genome["weight"],
                         "group": genome.get("group"), "train_windows": int(count), "target_share": float(target),
                         "tokens": int(seen), "realised_share": float(share)}
                        for genome, count, target, seen, share in zip(genomes, windows, targets, tokens, realised)]}


# ----------------------------------------------------------------------------------------------------- export
def export_models(config, state_dict, output_dir):
    """Hub-ready folders from the trained weights, as the objective exports them (objectives.py)."""
    model = build_model(config)
    model.load_state_dict(state_dict)
    return export_with_tokenizer(OBJECTIVES[config.objective], model, output_dir)


# ------------------------------------------------------------------------------------------------------- main
def main(argv=None):
    config = parse_config(argv)
    precision, attention = resolve_runtime(config)
    check_fsdp_launch(precision)  # an FSDP config on CPU: FSDP2 in float32, or one line (distributed.py)
    accelerator = Accelerator(mixed_precision=precision, project_dir=config.output_dir,
                              log_with="tensorboard" if config.report_to == "tensorboard" else None)
    use_fsdp_on_cpu(accelerator)  # accelerate picks FSDP on accelerator devices only
    accumulation = config.gradient_accumulation_steps(accelerator.num_processes)
    opened = on_main_process(accelerator, lambda: open_run(config, accelerator, precision))
    lock, resume_from, progress = opened or (None, None, None)
    resume_from, progress = broadcast_object_list([resume_from, progress])
    for warning in config.warnings():
        accelerator.print(f"warning: config {warning}", file=sys.stderr)
    if config.resume and resume_from is None:
        accelerator.print(f"warning: --resume: {config.output_dir} holds no complete checkpoint; starting at step 0",
                          file=sys.stderr)
    try:
        train(config, accelerator, precision, attention, accumulation, resume_from, progress)
    finally:
        if lock is not None:
            lock.release()


def train(config, accelerator, precision, attention, accumulation, resume_from, progress):
    """The run itself, in a claimed output directory with its genome store built."""
    store, train_windows, validation_windows = build_data(config)
    masker = build_masker(config)

    set_seed(config.seed)
    model = build_model(config, attention)
    optimizer, scheduler = build_optimizer(config, model)
    model, optimizer = accelerator.prepare(model, optimizer)  # the scheduler is stepped by us, saved as JSON

    metrics = MetricsLog(os.path.join(config.output_dir, "metrics.jsonl"))
    start_step, interval = 0, torch.zeros(4)  # interval: summed loss, gen, disc over `steps` since the last log
    if resume_from:
        # model, optimizer, schedule and this process's RNG state, every file checked before it is read
        load_checkpoint(accelerator, resume_from, scheduler, progress.get("num_processes", 1))
        start_step, interval = progress["step"], torch.tensor(progress["interval"])
        accelerator.print(f"resuming from {resume_from} (step {start_step})")
    if accelerator.is_main_process:
        if resume_from:
            metrics.truncate_after(start_step)
        elif os.path.exists(metrics.path):
            os.remove(metrics.path)

    train_batches = MaskedWindowBatches(train_windows, masker, config.per_device_batch_size, accumulation,
                                        config.max_steps, accelerator.process_index, accelerator.num_processes,
                                        config.seed, repeat_weight(config))
    batches = iter(batch_loader(train_batches, config.num_workers, accelerator.device.type == "cuda", config.seed,
                                first=start_step * accumulation))
    sequence_length = config.crop_length + 2
    step_tokens = tokens_per_step(config)
    model_flops = flops_per_token(accelerator.unwrap_model(model).config, config.objective, sequence_length)
    peak = peak_flops(accelerator.device)

    estimate = run_estimate(config)
    accelerator.print(
        f"{config.objective} | masking {config.masking} | {sum(p.numel() for p in model.parameters()):,} parameters "
        f"| train {len(train_windows):,} windows, validation {len(validation_windows):,} | global batch "
        f"{config.global_batch_size} = {config.per_device_batch_size} x {accelerator.num_processes} process(es) x "
        f"{accumulation} | {precision}, {attention} | run: {estimate['tokens']:.3g} tokens, "
        f"{estimate['flops']:.3g} FLOPs")
    if config.corpus:
        accelerator.print("corpus: " + ", ".join(
            f"{genome['name']} {share:.1%}" for genome, share in zip(config.corpus["genomes"],
                                                                     train_windows.mixture.shares))
            + f" of the batches (sampling: {config.corpus['sampling']})")
    if config.report_to == "tensorboard":
        accelerator.init_trackers("tensorboard", config={
            key: value if isinstance(value, (int, float, str, bool)) else json.dumps(value)
            for key, value in config.to_dict().items()})

    def validation_metrics(step):
        # Under FSDP every rank runs the forward passes (each layer's weights are gathered from all of them); the
        # main process keeps the numbers
        evaluation = {}
        if accelerator.is_main_process or accelerator.distributed_type == DistributedType.FSDP:
            evaluation = evaluate(accelerator.unwrap_model(model),
                                  validation_batches(validation_windows, masker, config.per_device_batch_size,
                                                     config.eval_batches, step, config.seed),
                                  config.objective, accelerator.device, config.seed, accelerator.autocast())
        accelerator.wait_for_everyone()
        return evaluation if accelerator.is_main_process else {}

    # One bar (step/s, ETA; the latest loss and validation numbers in its postfix), or without one a line per
    # logging step and evaluation; --quiet: neither (nucel/console.py)
    with console.progress(config.max_steps, initial=start_step, unit="step", desc="pretrain",
                          enabled=accelerator.is_main_process and config.progress_bar) as bar:
        lines, shown = accelerator.is_main_process and console.progress_lines(bar), {}
        evaluation, evaluated_at, step = {}, None, start_step
        interval_start, interval_steps = time.perf_counter(), 0
        while step < config.max_steps:
            totals = optimizer_step(accelerator, model, optimizer, scheduler, batches, accumulation,
                                    config.max_grad_norm)
            step += 1
            interval += torch.cat([accelerator.reduce(totals, "mean").cpu(), torch.ones(1)])
            interval_steps += 1
            bar.update(1)

            if step % config.logging_steps == 0 or step == config.max_steps:
                elapsed = time.perf_counter() - interval_start
                tokens_per_second = interval_steps * step_tokens / elapsed
                mean = (interval[:3] / interval[3]).tolist()
                record = {"step": step, "epoch": round(step * accumulation / train_batches.batches_per_epoch, 4),
                          "loss": mean[0], "lr": scheduler.get_last_lr()[0],
                          "tokens_seen": step * step_tokens, "tokens_per_second": tokens_per_second}
                record.update({name: mean[1 + LOSS_PART_SLOTS.index(name)]
                               for name in OBJECTIVES[config.objective].loss_parts})
                if peak:
                    record["mfu"] = tokens_per_second * model_flops / (peak * accelerator.num_processes)
                if accelerator.is_main_process:
                    metrics.write(record)
                accelerator.log({key: value for key, value in record.items() if key != "step"}, step=step)
                shown.update({"loss": f"{mean[0]:.4f}", "tok/s": f"{tokens_per_second:,.0f}",
                              **({"mfu": f"{record['mfu']:.1%}"} if peak else {})})
                bar.set_postfix(shown)
                if lines:  # no bar (a log file): the same numbers, one line per logging step
                    print(f"step {step}/{config.max_steps}: " + ", ".join(f"{k} {v}" for k, v in shown.items()),
                          flush=True)
                interval, interval_start, interval_steps = torch.zeros(4), time.perf_counter(), 0

            if step % config.eval_steps == 0 or step == config.max_steps:
                evaluation, evaluated_at = validation_metrics(step), step
                if accelerator.is_main_process:
                    metrics.write({"step": step, **evaluation})
                    metrics.plot(os.path.join(config.output_dir, "metrics.png"))
                    shown.update(headline(evaluation))
                    bar.set_postfix(shown)
                    if lines:
                        print(f"step {step}: {describe(evaluation)}"
                              + ("" if not not_learned(evaluation) else " (no better than a trivial baseline yet)"),
                              flush=True)
                accelerator.log(evaluation, step=step)
                interval_start = time.perf_counter()  # evaluation time is not training throughput

            if step % config.save_steps == 0 or step == config.max_steps:
                save_checkpoint(accelerator, config.output_dir, step, {
                    "interval": interval.tolist(), "genome_checksum": store.checksum,
                    "num_processes": accelerator.num_processes, "config": config.to_dict()}, scheduler,
                    config.save_total_limit)
                interval_start = time.perf_counter()

    if evaluated_at != step:  # resumed at the end: nothing was evaluated in this process
        evaluation = validation_metrics(step)
    state_dict = accelerator.get_state_dict(model)  # gathered on every rank (needed under FSDP)
    if accelerator.is_main_process:
        paths = export_models(config, state_dict, config.output_dir)
        warnings = not_learned(evaluation)
        summary = {"steps": step, "tokens_seen": step * step_tokens, "validation": evaluation, "warnings": warnings,
                   "exports": paths, "genome": {"checksum": store.checksum, "sources": store.index["sources"],
                                                "total_length": store.total_length,
                                                "soft_masked": store.index.get("repeat_count")},
                   "corpus": corpus_summary(config, train_windows, train_batches, step, accumulation),
                   "config": config.to_dict(), "compute_estimate": estimate}
        with open(os.path.join(config.output_dir, "pretraining_summary.json"), "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=1)
        metrics.plot(os.path.join(config.output_dir, "metrics.png"))
        accelerator.print(f"validation at step {step}: {describe(evaluation)}")
        for warning in warnings:
            accelerator.print(f"warning: pretraining learned nothing measurable: {warning}", file=sys.stderr)
        for name, path in paths.items():
            accelerator.print(f"exported {name}: {path}")
    accelerator.wait_for_everyone()
    accelerator.end_training()


cli = one_line_errors(main)
