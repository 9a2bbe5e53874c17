"""Does tying the generator's token embeddings to the discriminator's (ELECTRA's `share_embeddings`) help NucEL?

Trains the same tiny ELECTRA twice on real human DNA (hg38 chr2 slice) with identical batches, masks and seeds,
sharing on and off, then scores held-out windows. Prints a table.

    python benchmarks/share_embeddings.py [--steps 600]
"""

import argparse
import contextlib
import os
import tempfile
import time

import torch
from _harness import SHARED_GENOMES

from nucel.modeling_nucel import NucELConfig, NucELForPreTraining
from nucel.tokenization.genome_store import GenomeStore
from nucel.tokenization.prepare_genome import prepare_genome
from nucel.training.pretraining.build import evaluate
from nucel.training.pretraining.genome_windows import GenomeWindows
from nucel.training.pretraining.masking import uniform_mask

FASTA = os.path.join(SHARED_GENOMES, "hg38_chr2_1-2333275.fa.gz")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    with tempfile.TemporaryDirectory() as scratch:
        prepare_genome([FASTA], scratch, log=lambda *_: None)
        store = GenomeStore(scratch)
        kwargs = dict(window_length=args.crop + 32, overlap=0, crop_length=args.crop, validation_fraction=0.1)
        train, validation = GenomeWindows(store, **kwargs), GenomeWindows(store, split="validation", **kwargs)
        rng = torch.Generator().manual_seed(0)
        order = torch.randperm(len(train), generator=rng).tolist()
        batches = []
        for step in range(args.steps):
            ids = torch.stack([train[order[(step * args.batch_size + i) % len(order)]]["input_ids"]
                               for i in range(args.batch_size)])
            batches.append(uniform_mask(ids, 0.15, generator=rng))
        held_out = []
        for start in range(0, min(len(validation), 512), 64):
            ids = torch.stack([validation[i]["input_ids"] for i in range(start, min(start + 64, len(validation)))])
            held_out.append(dict(zip(("input_ids", "labels"), uniform_mask(ids, 0.15, generator=rng))))

        print(f"\nhg38 chr2 slice, {args.steps} steps x {args.batch_size} x {args.crop + 2} tokens, "
              f"{sum(len(b['input_ids']) for b in held_out)} held-out windows\n")
        print("| share_embeddings | trainable params | disc. accuracy | all-original baseline | disc. AUC | "
              "gen. accuracy | step (ms) |")
        print("|---|---|---|---|---|---|---|")
        for share in (False, True):
            config = NucELConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
                                 generator_hidden_size=64, generator_num_hidden_layers=2,
                                 generator_num_attention_heads=2, generator_intermediate_size=128,
                                 share_embeddings=share)
            torch.manual_seed(0)
            model = NucELForPreTraining(config)
            optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
            start = time.perf_counter()
            for inputs, labels in batches:
                model(input_ids=inputs, labels=labels).loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            step_ms = (time.perf_counter() - start) / len(batches) * 1e3
            scores = evaluate(model, held_out, "electra", torch.device("cpu"), 123, contextlib.nullcontext())
            disc_acc, baseline, auc, gen_acc = (scores[f"eval_{key}"] for key in (
                "discriminator_accuracy", "all_original_accuracy", "discriminator_auc", "generator_accuracy"))
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
            print(f"| {share} | {trainable:,} | {disc_acc:.4f} | {baseline:.4f} | {auc:.4f} | {gen_acc:.4f} | "
                  f"{step_ms:.0f} |")


if __name__ == "__main__":
    main()
