"""Will the data path starve the model? Windows/s that one training process's loader delivers on this CPU (genome
store -> windows -> masking -> collate: the DataLoader training/pretraining/run.py builds) for each masking and
DataLoader worker count, beside the windows/s the model consumes (training steps/s x batch). Prints two tables.

    python benchmarks/data_path.py     # tiny.yaml and nucel-93m.yaml on the hg38 slice, workers 0 1 2, ~1 minute
    python benchmarks/data_path.py --gpu-config-steps 0 --maskings uniform span randommask   # no 93M CPU step
    python benchmarks/data_path.py --gpu-tokens-per-s N   # against a GPU's measured tokens/s (benchmarks/gpu.py)
    python benchmarks/data_path.py --corpus training/configs/corpora/six-genomes.yaml   # a corpus's mixture too

Every piece comes from the run's own builders (build.py: build_data, build_masker, build_model, build_optimizer,
optimizer_step; batches.py: MaskedWindowBatches), so the benchmark times exactly what a run loads and trains.

- Loader: per (config, masking, workers), `--warmup` (+2 per worker, to drain the start-up prefetch) untimed
  batches, then `--repeats` timed blocks of `--batches` (the median block reported), consecutive from step 0 as a
  fresh run reads them; one process (rank 0 of 1, no accumulation), batch = the config's per_device_batch_size.
- Model: the config's training step (forward + backward + AdamW, as run.py steps it) on one fixed batch, median of
  `--steps` after `--model-warmup`; windows/s consumed = steps/s x batch. `--gpu-config`'s step is timed on this
  CPU too (`--gpu-config-steps`, at `--gpu-config-batch-size`), for reference.
- Headroom = loader windows/s / model windows/s of the same config. `--config` is set against its own step on this
  CPU; `--gpu-config` (the published nucel-93m.yaml by default) against what one GPU would consume: the tokens/s of
  `--gpu-tokens-per-s` when given, else the GPU's dense bf16 peak (training/pretraining/compute.py) x `--mfu`
  (default 40%: benchmarks/gpu.py's goal) / the config's training FLOPs per token. That row is a requirement
  derived from documented figures, not a GPU measurement.
- With 0 workers this process masks, with torch's intra-op threads: on a busy machine (another process on a core)
  torch.searchsorted, which span and randommask masking call per window, can stall for milliseconds per call.
  `--threads 1` shows the rate without that; DataLoader workers always run one thread.
"""

import argparse
import contextlib
import itertools
import os
import tempfile
import time

import torch
from _harness import REPO_ROOT, SHARED_GENOMES, interleaved_medians
from accelerate import Accelerator

from nucel.tokenization.prepare_genome import prepare_genome
from nucel.training.pretraining.batches import MaskedWindowBatches, batch_loader
from nucel.training.pretraining.build import (
    build_data,
    build_masker,
    build_model,
    build_optimizer,
    optimizer_step,
    resolve_runtime,
)
from nucel.training.pretraining.compute import PEAK_BF16_FLOPS, flops_per_token
from nucel.training.pretraining.config import load_config
from nucel.training.pretraining.masking import STRATEGIES

FASTA = os.path.join(SHARED_GENOMES, "hg38_chr2_1-2333275.fa.gz")
CONFIGS = os.path.join(REPO_ROOT, "training", "configs")
GPU_MFU_GOAL = 0.40  # benchmarks/gpu.py: "goal: MFU >= 40% with flash_attention_2 on H100/H200"
LOADER_COLUMNS = ("config", "crop (bp)", "batch", "masking", "workers", "windows/s", "bp/s", "ms/batch",
                  "headroom (loader / model)")
MODEL_COLUMNS = ("config", "model", "where", "batch x seq", "step (ms)", "steps/s", "windows/s consumed")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(CONFIGS, "tiny.yaml"),
                        help="the config whose data path and training step are timed on this CPU")
    parser.add_argument("--gpu-config", default=os.path.join(CONFIGS, "nucel-93m.yaml"),
                        help="a config whose data path is set against what one GPU would consume ('none': skip)")
    parser.add_argument("--fasta", nargs="+", default=[FASTA])
    parser.add_argument("--corpus", help="a corpus manifest (as `nucel pretrain --corpus`) instead of --fasta: the "
                                         "loader then also draws the genomes' mixture")
    parser.add_argument("--store", help="genome store folder (with --corpus: the folder holding genome-store/; "
                                        "prepared there, or reused if already prepared for "
                                        "--fasta); default: a temporary folder")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="DataLoader num_workers to time")
    parser.add_argument("--maskings", nargs="+", choices=STRATEGIES, default=["uniform", "randommask"])
    parser.add_argument("--batches", type=int, default=40, help="timed loader batches per block")
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks per row (the median block is reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed loader batches per row (+2 per worker)")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps (median reported)")
    parser.add_argument("--model-warmup", type=int, default=2)
    parser.add_argument("--gpu-config-steps", type=int, default=3,
                        help="also time --gpu-config's training step on this CPU, median of this many steps after "
                             "one untimed (0: skip; the published shape: ~3 s a step at batch 1 on 2 idle cores)")
    parser.add_argument("--gpu-config-batch-size", type=int, default=1,
                        help="batch of that CPU step (its per_device_batch_size is GPU-sized)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads of this process, which masks when "
                        "workers is 0 and trains (default: torch's); DataLoader workers run 1 thread each")
    parser.add_argument("--gpu", choices=sorted(PEAK_BF16_FLOPS), default="H100",
                        help="the GPU whose dense bf16 peak (training/pretraining/compute.py) sets the need")
    parser.add_argument("--mfu", type=float, default=GPU_MFU_GOAL,
                        help="model FLOPs utilisation assumed on it (default: benchmarks/gpu.py's goal)")
    parser.add_argument("--gpu-tokens-per-s", type=float,
                        help="a measured training tokens/s of --gpu-config on one GPU (e.g. benchmarks/gpu.py's)")
    args = parser.parse_args(argv)
    if args.gpu_config.lower() == "none":
        args.gpu_config = None
    return args


def loader_rate(config, windows, masking_config, num_workers, batches, repeats, warmup, device):
    """(windows/s, batches/s) of run.py's DataLoader over `windows` with `masking_config`'s masker: the median of
    `repeats` consecutive blocks of `batches` (a stall from another process on a shared machine hits one block)."""
    masker = build_masker(masking_config)
    dataset = MaskedWindowBatches(windows, masker, config.per_device_batch_size, 1, config.max_steps,
                                  seed=config.seed)
    iterator = iter(batch_loader(dataset, num_workers, device.type == "cuda", config.seed))
    for _ in range(warmup + 2 * num_workers):  # worker start-up and its first prefetched batches
        next(iterator)
    blocks = []  # (windows, seconds) of each timed block
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        for _ in range(batches):
            count += next(iterator)["input_ids"].shape[0]
        blocks.append((count, time.perf_counter() - start))
    del iterator  # shuts its workers down before the next row starts its own
    count, seconds = sorted(blocks, key=lambda block: block[0] / block[1])[len(blocks) // 2]  # the median block
    return count / seconds, batches / seconds


def model_step_seconds(config, windows, accelerator, attention, steps, warmup):
    """Median seconds of one training step of `config`'s model on one fixed batch of its own windows."""
    torch.manual_seed(config.seed)
    model = build_model(config, attention)
    optimizer, scheduler = build_optimizer(config, model)
    model, optimizer = accelerator.prepare(model, optimizer)
    fixed = itertools.repeat(MaskedWindowBatches(windows, build_masker(config), config.per_device_batch_size, 1,
                                                 config.max_steps, seed=config.seed)[0])

    def step():
        optimizer_step(accelerator, model, optimizer, scheduler, fixed, 1, config.max_grad_norm)

    seconds = interleaved_medians(accelerator.device, {"step": step}, steps, warmup)["step"]
    accelerator.free_memory()
    return seconds


def describe_model(config):
    model = config.model
    return (f"{config.objective} {model.get('hidden_size', '?')} x {model.get('num_hidden_layers', '?')}"
            + (f" + generator {model.get('generator_hidden_size', '?')} x "
               f"{model.get('generator_num_hidden_layers', '?')}" if config.objective == "electra" else ""))


def gpu_need(config, args):
    """(tokens/s, where, how) one GPU would train `config` at."""
    if args.gpu_tokens_per_s:
        return args.gpu_tokens_per_s, "1 GPU, given", f"{args.gpu_tokens_per_s:,.0f} tokens/s (--gpu-tokens-per-s)"
    per_token = flops_per_token(config.model_config(), config.objective, config.crop_length + 2)
    peak = PEAK_BF16_FLOPS[args.gpu]
    return (peak * args.mfu / per_token, f"1 {args.gpu}, bf16, {args.mfu:.0%} MFU, derived",
            f"{peak / 1e12:,.0f} TFLOP/s dense bf16 peak (training/pretraining/compute.py) x {args.mfu:.0%} MFU "
            f"(benchmarks/gpu.py's goal) / {per_token / 1e6:,.1f} MFLOP per token (compute.flops_per_token), "
            "derived, not measured")


def rate(value):
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}" if value >= 1 else f"{value:.3f}"


def ratio(value):
    return f"{value:,.2f}" if value >= 0.1 else f"{value:.2g}"


def markdown_table(columns, rows):
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    targets = [(args.config, "cpu")] + ([(args.gpu_config, "gpu")] if args.gpu_config else [])
    with contextlib.ExitStack() as stack:
        store = args.store or stack.enter_context(tempfile.TemporaryDirectory())
        overrides = [("corpus", args.corpus), ("output_dir", store)] if args.corpus else \
            [("fasta", args.fasta), ("genome_store", store)]
        base = load_config(args.config, overrides)
        prepare_genome(base.fasta, base.store_directory, log=lambda *_: None)  # as run.py's open_run
        precision, attention = resolve_runtime(base)
        accelerator = Accelerator(mixed_precision=precision)
        model_rows, loader_rows, notes = [], [], []
        for path, against in targets:
            name = os.path.basename(path)
            config = load_config(path, overrides)
            _, windows, _ = build_data(config)
            seq = config.crop_length + 2
            batch = config.per_device_batch_size
            if against == "cpu" or args.gpu_config_steps:
                cpu_config = config if against == "cpu" else load_config(
                    path, overrides + [("per_device_batch_size", args.gpu_config_batch_size),
                                       ("global_batch_size", args.gpu_config_batch_size)])
                steps = args.steps if against == "cpu" else args.gpu_config_steps
                warmup = args.model_warmup if against == "cpu" else 1
                seconds = model_step_seconds(cpu_config, windows, accelerator, attention, steps, warmup)
                cpu_batch = cpu_config.per_device_batch_size
                model_rows.append((name, describe_model(config), f"this CPU ({accelerator.device}, "
                                   f"{precision if precision != 'no' else 'fp32'}, {attention}), measured",
                                   f"{cpu_batch} x {seq}", f"{seconds * 1e3:,.1f}", f"{1 / seconds:.3f}",
                                   rate(cpu_batch / seconds)))
                if against == "cpu":
                    consumed = cpu_batch / seconds
                    notes.append(f"{name}: headroom against its training step on this CPU, measured: "
                                 f"{consumed:,.1f} windows/s of {seq} tokens")
            if against == "gpu":
                tokens_per_second, where, how = gpu_need(config, args)
                consumed = tokens_per_second / seq
                model_rows.append((name, describe_model(config), where, f"{batch} x {seq}",
                                   f"{batch / consumed * 1e3:,.1f}", f"{consumed / batch:.3f}", rate(consumed)))
                notes.append(f"{name}: headroom against {where}: {how} = {tokens_per_second:,.0f} tokens/s = "
                             f"{consumed:,.1f} windows/s of {seq} tokens")
            for masking in args.maskings:
                masking_config = load_config(path, overrides + [("masking", masking)])
                for workers in args.workers:
                    windows_per_second, batches_per_second = loader_rate(
                        config, windows, masking_config, workers, args.batches, args.repeats, args.warmup,
                        accelerator.device)
                    loader_rows.append((name, f"{config.crop_length:,}", batch, masking, workers,
                                        rate(windows_per_second),
                                        f"{windows_per_second * config.crop_length:,.0f}",
                                        f"{1e3 / batches_per_second:,.1f}", ratio(windows_per_second / consumed)))

    print(f"\n{f'corpus={args.corpus}' if args.corpus else 'fasta=' + ', '.join(map(os.path.basename, args.fasta))} "
          f"device={accelerator.device} "
          f"threads={torch.get_num_threads()} cpus={os.cpu_count()} torch={torch.__version__}\n")
    print("### Model: windows/s a training process consumes\n")
    print(markdown_table(MODEL_COLUMNS, model_rows))
    print("\n### Loader: windows/s one process's DataLoader delivers (store -> windows -> masking -> collate)\n")
    print(markdown_table(LOADER_COLUMNS, loader_rows))
    print("\n" + "\n".join(f"- {note}" for note in notes))
    print("\ngoal: headroom > 1 (the loader is not the bottleneck) at the workers a run uses")


if __name__ == "__main__":
    main()
