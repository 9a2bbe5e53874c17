"""GPU benchmark, self-checking: attention backends agree, the published ELECTRA step's tokens/s and MFU, and
unpadded vs padded inference on variable-length input. Exits non-zero when a backend disagrees.

    python benchmarks/gpu.py     # CUDA: published 512 x 22 (+ generator 256 x 11), bf16, batch 32 x 1,024
                                 # no CUDA: the same checks on a tiny shape, fp32, batch 2 (what CI runs)

1. Agreement: every backend runs forward + backward on one padded batch with the same weights (in --dtype); the
   relative error (||x - ref|| / ||ref||) of the real tokens' outputs and of all parameter gradients is taken
   against sdpa in fp32. A backend fails when its error exceeds max(3 x sdpa's own error in --dtype, a floor).
   flex_attention has no backward on CPU; flash_attention_2 needs the flash_attn package on CUDA (else skipped).
2. Training step: NucELForPreTraining (ELECTRA), autocast bf16 on CUDA, fused AdamW, full 1,024-token windows;
   tokens/s and MFU = tokens/s x training FLOPs per token (training/pretraining/compute.py) / the device's dense
   bf16 peak.
3. Inference on variable-length sequences (lengths uniform in [seq/8, seq]): padded batches on sdpa against
   unpadded flash_attention_2 (tokens packed, no padding computed).

With `--corpus corpus.yaml` (the manifest `nucel pretrain --corpus` reads, unchanged) the training step takes each
step's batch from the run's own data path (genome store -> corpus mixture -> windows -> masking -> DataLoader with
`--workers`) instead of one fixed random batch, so its tokens/s include whatever the loader costs:

    python benchmarks/gpu.py --corpus training/configs/corpora/six-genomes.yaml
"""

import argparse
import contextlib
import os
import sys
import tempfile

import torch
import transformers
from _harness import REPO_ROOT, interleaved_medians, masked_batch

import nucel.modeling_nucel.modeling_nucel as nucel_modeling
from nucel.modeling_nucel import NucELConfig, NucELForPreTraining, NucELModel
from nucel.tokenization.prepare_genome import prepare_genome
from nucel.training.pretraining.batches import MaskedWindowBatches, batch_loader
from nucel.training.pretraining.build import build_data, build_masker
from nucel.training.pretraining.compute import flops_per_token, peak_flops
from nucel.training.pretraining.config import load_config

BACKENDS = ("sdpa", "eager", "flex_attention", "flash_attention_2")
CONFIGS = os.path.join(REPO_ROOT, "training", "configs")
ERROR_FLOOR = {"bf16": {"output": 1e-2, "gradient": 2e-2}, "fp32": {"output": 1e-4, "gradient": 1e-4}}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["bf16", "fp32"], help="default: bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--shape", choices=["published", "tiny"],
                        help="published: 512 x 22 + 256 x 11; tiny: 64 x 3 + 32 x 2 (default: published on CUDA, "
                             "tiny on CPU)")
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, help="sequences per training step (default: 32 on CUDA, 2 on CPU)")
    parser.add_argument("--inference-sequences", type=int, default=256)
    parser.add_argument("--inference-batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, help="peak FLOP/s for MFU where the device is not known")
    parser.add_argument("--corpus", help="a corpus manifest: training batches from the run's data path over it "
                                         "(crops of --seq-len - 2 bp) instead of a fixed random batch")
    parser.add_argument("--workers", type=int, default=4,
                        help="DataLoader workers feeding the step with --corpus (nucel-93m.yaml's num_workers)")
    args = parser.parse_args(argv)
    on_cuda = args.device.startswith("cuda")
    args.dtype = args.dtype or ("bf16" if on_cuda else "fp32")
    args.shape = args.shape or ("published" if on_cuda else "tiny")
    args.batch_size = args.batch_size or (32 if on_cuda else 2)
    return args


def build_config(args):
    if args.shape == "tiny":
        return NucELConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                           generator_hidden_size=32, generator_num_hidden_layers=2, generator_num_attention_heads=2,
                           generator_intermediate_size=64, local_attention=32,
                           max_position_embeddings=max(2048, args.seq_len))
    return NucELConfig(max_position_embeddings=max(2048, args.seq_len))


def unavailable_reason(backend, device):
    if backend == "flash_attention_2" and (nucel_modeling.flash_attn_varlen_func is None or device == "cpu"):
        return "needs the flash_attn package on CUDA"
    if backend == "flex_attention" and nucel_modeling.flex_attention is None:
        return "needs torch>=2.5"
    return None


def variable_length_batch(batch, seq_len, device, seed=0):
    """[CLS] ACGT... [SEP] rows of random lengths in [seq/8, seq], padded to the longest."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(max(8, seq_len // 8), seq_len + 1, (batch,), generator=generator)
    lengths[0] = seq_len
    ids = torch.randint(5, 9, (batch, seq_len), generator=generator)
    positions = torch.arange(seq_len)[None]
    mask = positions < lengths[:, None]
    ids[:, 0] = 2
    ids[torch.arange(batch), lengths - 1] = 3
    ids = ids.masked_fill(~mask, 0)
    return ids.to(device), mask.long().to(device)


# ----------------------------------------------------------------------------------------------- 1. agreement
def relative_error(value, reference):
    return ((value.float() - reference.float()).norm() / reference.float().norm()).item()


def forward_backward(model, backend, ids, mask, upstream, with_backward):
    model.config._attn_implementation = backend
    model.zero_grad(set_to_none=True)
    with torch.set_grad_enabled(with_backward):
        hidden = model(ids, mask).last_hidden_state[mask.bool()]
        if not with_backward:
            return hidden.detach(), None
        (hidden.float() * upstream).sum().backward()
    return hidden.detach(), torch.cat([p.grad.flatten().float() for p in model.parameters() if p.grad is not None])


def measure_agreement(args, config):
    """Rows of (backend, output error, gradient error or None, note) against fp32 sdpa."""
    ids, mask = variable_length_batch(4, min(args.seq_len, 512), args.device, seed=1)
    torch.manual_seed(0)
    reference_model = NucELModel(config).to(args.device).train()
    model = NucELModel(config).to(args.device).train()
    model.load_state_dict(reference_model.state_dict())
    model.to(torch.bfloat16 if args.dtype == "bf16" else torch.float32)
    upstream = torch.randn(int(mask.sum()), config.hidden_size, generator=torch.Generator().manual_seed(2))
    upstream = upstream.to(args.device)
    reference = forward_backward(reference_model, "sdpa", ids, mask, upstream, with_backward=True)
    rows = []
    for backend in BACKENDS:
        reason = unavailable_reason(backend, args.device)
        if reason:
            rows.append((backend, None, None, f"skipped: {reason}"))
            continue
        with_backward = not (backend == "flex_attention" and args.device == "cpu")
        output, gradient = forward_backward(model, backend, ids, mask, upstream, with_backward)
        rows.append((backend, relative_error(output, reference[0]),
                     relative_error(gradient, reference[1]) if gradient is not None else None,
                     "" if with_backward else "forward only: no flex backward on CPU"))
    return rows


def check_agreement(rows, dtype):
    """The failures: a backend whose error exceeds max(3 x sdpa's, the dtype's floor)."""
    sdpa = next(row for row in rows if row[0] == "sdpa")
    limits = {kind: max(3 * (error or 0.0), ERROR_FLOOR[dtype][kind])
              for kind, error in (("output", sdpa[1]), ("gradient", sdpa[2]))}
    failures = []
    for backend, output_error, gradient_error, _ in rows:
        for kind, error in (("output", output_error), ("gradient", gradient_error)):
            if error is not None and not error <= limits[kind]:  # NaN fails too
                failures.append(f"{backend}: {kind} relative error {error:.2e} > {limits[kind]:.2e}")
    return failures


def print_agreement(rows, dtype):
    print(f"### 1. Backend agreement ({dtype}, padded batch, relative error vs sdpa fp32)\n")
    print("| backend | output rel. error | gradient rel. error | note |")
    print("|---|---|---|---|")

    def show(error):
        return "-" if error is None else f"{error:.2e}"

    for backend, output_error, gradient_error, note in rows:
        print(f"| {backend} | {show(output_error)} | {show(gradient_error)} | {note} |")
    print()


# ----------------------------------------------------------------------------------------------- 2. training step
def corpus_batches(args, stack):
    """An endless iterator of the run's training batches over `args.corpus` (its genome store prepared in a
    temporary folder), as pretraining's DataLoader serves them: the published recipe's data keys
    (nucel-93m.yaml), crops of `--seq-len` - 2 bp, batch `--batch-size`."""
    store = stack.enter_context(tempfile.TemporaryDirectory())
    crop = args.seq_len - 2
    config = load_config(os.path.join(CONFIGS, "nucel-93m.yaml"), [
        ("corpus", args.corpus), ("output_dir", store), ("crop_length", crop), ("window_length", crop + 200),
        ("per_device_batch_size", args.batch_size), ("global_batch_size", args.batch_size),
        ("max_position_embeddings", max(2048, args.seq_len))])
    prepare_genome(config.fasta, config.store_directory, log=lambda *_: None)
    _, windows, _ = build_data(config)
    dataset = MaskedWindowBatches(windows, build_masker(config), args.batch_size, 1, config.max_steps,
                                  seed=config.seed)
    while True:  # a run's length of batches, again if a benchmark ever outlasts it
        yield from batch_loader(dataset, args.workers, args.device.startswith("cuda"), config.seed)


def electra_step(config, backend, args, batches=None):
    """One training step; its batch is the same random one every time, or the next of `batches`."""
    torch.manual_seed(0)
    model = NucELForPreTraining(NucELConfig.from_dict(config.to_dict(), attn_implementation=backend))
    model = model.to(args.device).train()
    fused = args.device.startswith("cuda")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused)
    fixed = masked_batch(config, args.batch_size, args.seq_len, args.device, seed=3)
    autocast = torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16, enabled=args.dtype == "bf16")

    def step():
        batch = fixed if batches is None else {
            key: value.to(args.device, non_blocking=True) for key, value in next(batches).items()}
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def training_rows(args, config, batches=None):
    backends = [b for b in ("flash_attention_2", "sdpa") if not unavailable_reason(b, args.device)]
    if args.dtype == "fp32":  # flash attention runs in half precision only
        backends = [b for b in backends if b != "flash_attention_2"]
    steps = {backend: electra_step(config, backend, args, batches) for backend in backends}
    times = interleaved_medians(args.device, steps, args.steps, args.warmup)
    peak = args.peak_tflops * 1e12 if args.peak_tflops else peak_flops(torch.device(args.device))
    per_token = flops_per_token(config, "electra", args.seq_len)
    tokens = args.batch_size * args.seq_len
    rows = []
    for backend, seconds in times.items():
        achieved = tokens / seconds * per_token
        rows.append((backend, seconds, tokens / seconds, achieved, achieved / peak if peak else None))
    return rows, per_token, peak


def print_training(rows, per_token, peak, args, config):
    print(f"### 2. ELECTRA training step ({config.hidden_size} x {config.num_hidden_layers} + generator "
          f"{config.generator_hidden_size} x {config.generator_num_hidden_layers}, batch {args.batch_size} x "
          f"{args.seq_len}, {args.dtype})\n")
    print("batches: " + (f"{args.corpus} through the run's data path ({args.workers} DataLoader workers)"
                         if args.corpus else "one fixed random batch (the model alone; --corpus adds the loader)")
          + "\n")
    print(f"training FLOPs per token: {per_token / 1e6:,.1f} MFLOP; peak: "
          + (f"{peak / 1e12:.0f} TFLOP/s" if peak else "unknown (give --peak-tflops for MFU)") + "\n")
    print("| attention | step (ms, median) | tokens/s | achieved TFLOP/s | MFU |")
    print("|---|---|---|---|---|")
    for backend, seconds, tokens_per_second, achieved, mfu in rows:
        print(f"| {backend} | {seconds * 1e3:.1f} | {tokens_per_second:,.0f} | {achieved / 1e12:.1f} | "
              + (f"{mfu:.1%}" if mfu is not None else "-") + " |")
    print("\ngoal: MFU >= 40% with flash_attention_2 on H100/H200\n")


# ----------------------------------------------------------------------------------------------- 3. unpadding
def inference_rows(args, config):
    if unavailable_reason("flash_attention_2", args.device) or args.dtype != "bf16":
        return None
    torch.manual_seed(0)
    model = NucELModel(config).to(args.device, torch.bfloat16).eval()
    ids, mask = variable_length_batch(args.inference_sequences, args.seq_len, args.device, seed=4)
    batches = [(ids[i:i + args.inference_batch_size], mask[i:i + args.inference_batch_size])
               for i in range(0, len(ids), args.inference_batch_size)]

    def run(backend):
        def call():
            model.config._attn_implementation = backend
            with torch.inference_mode():
                for batch_ids, batch_mask in batches:
                    model(batch_ids, batch_mask)
        return call

    times = interleaved_medians(args.device, {"padded (sdpa)": run("sdpa"), "unpadded (flash_attention_2)":
                                     run("flash_attention_2")}, args.steps, args.warmup)
    real_tokens = int(mask.sum())
    return [(name, seconds, real_tokens / seconds) for name, seconds in times.items()], real_tokens / mask.numel()


def print_inference(result, args):
    print(f"### 3. Inference on variable-length input ({args.inference_sequences} sequences, lengths uniform in "
          f"[{args.seq_len // 8}, {args.seq_len}], batches of {args.inference_batch_size})\n")
    if result is None:
        print("skipped: the unpadded path is flash_attention_2, which needs the flash_attn package on CUDA and bf16\n")
        return
    rows, real_fraction = result
    padded = rows[0][1]
    print(f"real tokens: {real_fraction:.0%} of the padded batch\n")
    print("| path | time (ms, median) | real tokens/s | speed-up vs padded |")
    print("|---|---|---|---|")
    for name, seconds, tokens_per_second in rows:
        print(f"| {name} | {seconds * 1e3:.1f} | {tokens_per_second:,.0f} | {padded / seconds:.2f} |")
    print("\ngoal: unpadded >= 1.5x padded\n")


def main(argv=None):
    args = parse_args(argv)
    if args.dtype == "bf16" and args.device == "cpu":
        sys.exit("error: --dtype bf16 is for CUDA; on CPU give --dtype fp32")
    config = build_config(args)
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu"
    flash_attn = "yes" if nucel_modeling.flash_attn_varlen_func else "no"
    print(f"\ndevice={args.device} ({name}) dtype={args.dtype} torch={torch.__version__} "
          f"transformers={transformers.__version__} flash_attn={flash_attn}\n")
    agreement = measure_agreement(args, config)
    print_agreement(agreement, args.dtype)
    with contextlib.ExitStack() as stack:
        batches = corpus_batches(args, stack) if args.corpus else None
        print_training(*training_rows(args, config, batches), args, config)
    print_inference(inference_rows(args, config), args)
    failures = check_agreement(agreement, args.dtype)
    if failures:
        sys.exit("error: attention backends disagree:\n  " + "\n  ".join(failures))
    print("all available attention backends agree")


if __name__ == "__main__":
    main()
