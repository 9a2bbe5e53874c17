"""Is data loading the bottleneck of pretraining? Tokens/s of the full loop (genome windows + masking + optimizer
step, as training/pretrain.py runs it) against the bare optimizer step on one fixed batch, for ELECTRA and MLM, in
one process, interleaved. Also the data path alone. Prints a table; the goal is loop >= 90% of the bare step.

    python benchmarks/pretrain_throughput.py                                 # tiny.yaml on the hg38 slice, CPU
    python benchmarks/pretrain_throughput.py --config training/configs/nucel-93m.yaml --steps 50 --num-workers 4
"""

import argparse
import itertools
import os
import statistics
import tempfile
import time

import torch
from _harness import REPO_ROOT, SHARED_GENOMES
from accelerate import Accelerator

from nucel.tokenization.genome_store import GenomeStore
from nucel.tokenization.prepare_genome import prepare_genome
from nucel.training.pretraining.batches import MaskedWindowBatches, batch_loader
from nucel.training.pretraining.build import build_masker, build_model, build_optimizer, optimizer_step, resolve_runtime
from nucel.training.pretraining.config import load_config
from nucel.training.pretraining.genome_windows import GenomeWindows

FASTA = os.path.join(SHARED_GENOMES, "hg38_chr2_1-2333275.fa.gz")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(REPO_ROOT, "training", "configs", "tiny.yaml"))
    parser.add_argument("--fasta", nargs="+", default=[FASTA])
    parser.add_argument("--steps", type=int, default=40, help="timed optimizer steps per mode and objective")
    parser.add_argument("--block", type=int, default=5, help="steps per interleaved block")
    parser.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (default: the config's)")
    parser.add_argument("--per-device-batch-size", type=int, default=None)
    parser.add_argument("--masking", default=None)
    return parser.parse_args()


def main():
    args = parse_args()
    overrides = [("fasta", args.fasta), ("max_steps", 10 ** 6)]
    overrides += [(key, value) for key, value in (("num_workers", args.num_workers), ("masking", args.masking),
                                                  ("per_device_batch_size", args.per_device_batch_size)) if value]
    base = load_config(args.config, overrides)
    base.global_batch_size = base.per_device_batch_size  # one process, no accumulation: one batch per step
    precision, attention = resolve_runtime(base)
    accelerator = Accelerator(mixed_precision=precision)
    with tempfile.TemporaryDirectory() as store_dir:
        prepare_genome(base.fasta, store_dir, log=lambda *_: None)
        windows = GenomeWindows(GenomeStore(store_dir), "train", window_length=base.window_length,
                                overlap=base.window_overlap, crop_length=base.crop_length, seed=base.seed)
        tokens_per_step = base.per_device_batch_size * (base.crop_length + 2)
        results = {}
        for objective in ("electra", "mlm"):
            config = load_config(args.config, overrides + [("objective", objective)])
            torch.manual_seed(0)
            model = build_model(config, attention)
            optimizer, scheduler = build_optimizer(config, model)
            model, optimizer = accelerator.prepare(model, optimizer)
            masker = build_masker(config)
            dataset = MaskedWindowBatches(windows, masker, config.per_device_batch_size, 1, config.max_steps,
                                          seed=config.seed)
            loader = iter(batch_loader(dataset, config.num_workers, accelerator.device.type == "cuda", 0))
            fixed = itertools.repeat(dataset[0])
            sources = {"bare step (fixed batch)": fixed, "full loop (windows + masking + step)": loader}
            for source in sources.values():  # warm-up: allocator, worker start-up
                optimizer_step(accelerator, model, optimizer, scheduler, source, 1, config.max_grad_norm)
            times = {name: [] for name in sources}
            for _ in range(args.steps // args.block):  # interleaved blocks: machine noise hits both alike
                for name, source in sources.items():
                    for _ in range(args.block):
                        start = time.perf_counter()
                        optimizer_step(accelerator, model, optimizer, scheduler, source, 1, config.max_grad_norm)
                        if accelerator.device.type == "cuda":
                            torch.cuda.synchronize()
                        times[name].append(time.perf_counter() - start)
            start, count = time.perf_counter(), 0
            for _ in range(args.steps):
                next(loader)
                count += 1
            data_only = tokens_per_step * count / (time.perf_counter() - start)
            results[objective] = ({name: tokens_per_step / statistics.median(t) for name, t in times.items()},
                                  data_only)
            del model, optimizer, loader

    print(f"\nconfig={os.path.basename(args.config)} masking={base.masking} device={accelerator.device} "
          f"precision={precision} attn={attention} batch={base.per_device_batch_size} seq={base.crop_length + 2} "
          f"workers={base.num_workers} threads={torch.get_num_threads()} torch={torch.__version__}\n")
    print("| objective | bare step tokens/s | full loop tokens/s | loop / bare | data path alone tokens/s |")
    print("|---|---|---|---|---|")
    for objective, (rates, data_only) in results.items():
        bare, loop = rates["bare step (fixed batch)"], rates["full loop (windows + masking + step)"]
        print(f"| {objective} | {bare:,.0f} | {loop:,.0f} | {loop / bare:.3f} | {data_only:,.0f} |")
    print("\ngoal: loop / bare >= 0.90 (data loading is not the bottleneck)")


if __name__ == "__main__":
    main()
