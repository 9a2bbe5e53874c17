"""One training step (forward + backward + AdamW) of NucEL MLM, NucEL ELECTRA and stock transformers
ModernBertForMaskedLM with the discriminator's shape, in one process, same batch, interleaved; prints a table.

    python benchmarks/train_step.py                       # CPU-sized default shape
    python benchmarks/train_step.py --published --device cuda --dtype bf16 --batch-size 32   # 512 x 22, seq 1024
"""

import argparse

import torch
import transformers
from _harness import interleaved_medians, masked_batch

from nucel.modeling_nucel import NucELConfig, NucELForMaskedLM, NucELForPreTraining


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per model (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--published", action="store_true", help="512 hidden x 22 layers, generator 256 x 11, seq 1024")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--attn-implementation", default="sdpa")
    return parser.parse_args()


def build_config(args):
    common = {"attn_implementation": args.attn_implementation, "max_position_embeddings": max(2048, args.seq_len)}
    if args.published:
        return NucELConfig(**common)
    # the generator: half the discriminator (NucELConfig's default)
    return NucELConfig(hidden_size=args.hidden_size, intermediate_size=4 * args.hidden_size,
                       num_hidden_layers=args.layers, num_attention_heads=args.heads, **common)


def make_step(model, batch):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    return step


def main():
    args = parse_args()
    if args.published:
        args.seq_len = 1024
    config = build_config(args)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    batch = masked_batch(config, args.batch_size, args.seq_len, args.device)

    torch.manual_seed(0)
    stock = transformers.ModernBertForMaskedLM._from_config(config.to_modernbert_config(),
                                                            attn_implementation=args.attn_implementation)
    models = {
        "stock ModernBertForMaskedLM": stock,
        "NucEL MLM (NucELForMaskedLM)": NucELForMaskedLM(config),
        "NucEL ELECTRA (NucELForPreTraining)": NucELForPreTraining(config),
    }
    steps = {}
    for name, model in models.items():
        model.to(args.device, dtype).train()
        steps[name] = make_step(model, batch)

    medians = interleaved_medians(args.device, steps, args.steps, args.warmup)

    tokens = args.batch_size * args.seq_len
    baseline = medians["stock ModernBertForMaskedLM"]
    disc = config
    print(f"\ndevice={args.device} dtype={args.dtype} attn={args.attn_implementation} "
          f"threads={torch.get_num_threads()} "
          f"batch={args.batch_size} seq={args.seq_len} discriminator={disc.hidden_size}x{disc.num_hidden_layers} "
          f"generator={disc.generator_hidden_size}x{disc.generator_num_hidden_layers} "
          f"transformers={transformers.__version__} torch={torch.__version__}\n")
    print("| model | params (M) | step (ms, median) | tokens/s | ratio vs stock MLM |")
    print("|---|---|---|---|---|")
    for name, model in models.items():
        median = medians[name]
        n_params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"| {name} | {n_params:.1f} | {median * 1e3:.1f} | {tokens / median:,.0f} | {median / baseline:.3f} |")
    print("\ngoals: NucEL MLM / stock MLM <= 0.90; ELECTRA / stock MLM <= 1.15")


if __name__ == "__main__":
    main()
