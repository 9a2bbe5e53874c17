"""Inference speed: nucel-embed bases/s (beside stock transformers ModernBertModel on the same windows, same
process) and nucel-score-variants SNVs/s, for the tiny and the published shape (random weights: speed does not
depend on them), plus the peak memory of embedding a 5-Mbp FASTA. Prints one table.

    python benchmarks/inference_throughput.py                         # tiny + published on CPU
    python benchmarks/inference_throughput.py --device cuda --dtype bfloat16 --bases 2000000 --variants 2000
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import transformers

from nucel.inference.embed import Embedder, FastaRecords, embed_to_file
from nucel.inference.tiling import tile
from nucel.inference.variants import Allele, VariantScorer
from nucel.model_folder import pick_dtype
from nucel.modeling_nucel import NucELConfig, NucELForPreTraining
from nucel.tokenization.reference import ReferenceGenome

SHAPES = {
    "tiny": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
                 local_attention=128, max_position_embeddings=512, generator_hidden_size=64,
                 generator_num_hidden_layers=2, generator_num_attention_heads=2, generator_intermediate_size=128),
    "published": dict(max_position_embeddings=2048),  # NucELConfig defaults: 512 x 22, generator 256 x 11
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--bases", type=int, default=60_000, help="bases embedded per shape (published: / 10)")
    parser.add_argument("--variants", type=int, default=64, help="SNVs scored per shape (published: / 16)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16"))
    parser.add_argument("--memory-mbp", type=float, default=5.0, help="FASTA size for the memory row (0: skip)")
    parser.add_argument("--memory-probe", nargs=2, metavar=("MODEL", "FASTA"), help=argparse.SUPPRESS)
    return parser.parse_args()


def timed(function, repeats=1):
    function()  # warm-up (allocations, kernels)
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def random_dna(length, seed=0):
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), length))


def embed_rows(name, export, args, bases):
    device = torch.device(args.device)
    dtype = pick_dtype(args.dtype, device)
    embedder = Embedder.from_pretrained(export, device=args.device, dtype=args.dtype, batch_size=args.batch_size)
    sequence = random_dna(bases)
    nucel = timed(lambda: embedder.embed(sequence))
    # stock ModernBERT, same weights and windows: the model alone, no tiling or stitching
    stock = transformers.ModernBertModel._from_config(embedder.encoder.config.to_modernbert_config(),
                                                      attn_implementation="sdpa")
    missing, unexpected = stock.load_state_dict(embedder.encoder.state_dict(), strict=False)
    assert not unexpected and all("rotary" in key for key in missing), (missing, unexpected)
    stock = stock.to(device=device, dtype=dtype).eval()
    window = embedder.window
    tiles = tile(bases, window, embedder.overlap)  # the very windows nucel-embed reads, overlaps included
    pieces = [torch.randint(5, 9, (w.end - w.start + 2,)) for w in tiles]

    @torch.no_grad()
    def run_stock():
        for start in range(0, len(pieces), args.batch_size):
            batch = torch.nn.utils.rnn.pad_sequence(pieces[start:start + args.batch_size], batch_first=True)
            stock(input_ids=batch.to(device), attention_mask=(batch > 0).long().to(device))

    baseline = timed(run_stock)
    what = f"embed {bases:,} bp, window {window}, overlap {embedder.overlap} ({len(tiles)} windows)"
    return [(name, what, f"{bases / nucel:,.0f} bp/s", f"{bases / baseline:,.0f} bp/s", f"{baseline / nucel:.2f}")]


def variant_rows(name, export, args, count):
    scorer = VariantScorer.from_pretrained(export, device=args.device, dtype=args.dtype, batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as scratch:
        chrom = random_dna(max(20_000, 4 * count), seed=1)
        with open(os.path.join(scratch, "ref.fa"), "w") as handle:
            handle.write(f">c\n{chrom}\n")
        positions = np.random.default_rng(2).choice(np.arange(1, len(chrom) + 1), count, replace=False)
        with ReferenceGenome(os.path.join(scratch, "ref.fa")) as reference:
            def run():
                alleles = [Allele("c", int(p), ".", chrom[p - 1], "ACGT"[("ACGT".index(chrom[p - 1]) + 1) % 4], "")
                           for p in positions]
                scorer.score_alleles(reference, alleles)
            seconds = timed(run)
    return [(name, f"score {count} SNVs, window {scorer.window} (3 scores, both strands)",
             f"{count / seconds:,.2f} SNVs/s", "", "")]


def memory_row(export, args):
    """Peak RSS of a fresh process embedding a FASTA, against the same process after loading the model. (Per-base
    output goes to a memory-mapped file; its pages count in RSS while the kernel holds them, so RSS would
    measure the page cache, not what the process needs.)"""
    with tempfile.TemporaryDirectory() as scratch:
        fasta = os.path.join(scratch, "big.fa")
        length = int(args.memory_mbp * 1e6)
        rng = np.random.default_rng(3)
        with open(fasta, "w") as handle:
            handle.write(">big\n")
            for start in range(0, length, 1_000_000):
                handle.write("".join(rng.choice(list("ACGT"), min(1_000_000, length - start))) + "\n")
        done = subprocess.run([sys.executable, __file__, "--memory-probe", export, fasta, "--device", args.device,
                               "--dtype", args.dtype], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
        loaded, peak, output_mb, seconds = map(float, done.stdout.split()[-4:])
    return [("tiny", f"embed a {args.memory_mbp:g}-Mbp one-record FASTA, one vector ({output_mb:.3f} MB of output)",
             f"peak RSS {peak:,.0f} MB; {loaded:,.0f} MB resident after loading the model",
             f"{length / seconds:,.0f} bp/s", "")]


def memory_probe(export, fasta, args):
    embedder = Embedder.from_pretrained(export, device=args.device, dtype=args.dtype, batch_size=args.batch_size)
    with open("/proc/self/statm") as handle:  # resident now, after loading (the high-water mark includes loading)
        loaded = int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    with tempfile.TemporaryDirectory() as scratch:
        summary = embed_to_file(embedder, FastaRecords(fasta), os.path.join(scratch, "out.npy"),
                                quiet=True, log=lambda line: None)
        output_mb = os.path.getsize(os.path.join(scratch, "out.npy")) / 1e6
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(loaded, peak, output_mb, summary["seconds"])


def main():
    args = parse_args()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    if args.memory_probe:
        return memory_probe(*args.memory_probe, args)
    torch.set_num_threads(os.cpu_count())
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.shapes:
            torch.manual_seed(0)
            export = os.path.join(scratch, name)
            NucELForPreTraining(NucELConfig(**SHAPES[name])).save_components(export)
            scale = (10, 16) if name == "published" else (1, 1)
            rows += embed_rows(name, export, args, max(2_000, args.bases // scale[0]))
            rows += variant_rows(name, export, args, max(2, args.variants // scale[1]))
            if name == "tiny" and args.memory_mbp > 0:
                rows += memory_row(export, args)
    print(f"device {args.device}, dtype {pick_dtype(args.dtype, torch.device(args.device))}, torch "
          f"{torch.__version__}, transformers {transformers.__version__}, {os.cpu_count()} CPU threads\n")
    print("| shape | work | NucEL (inference/) | stock ModernBertModel, same windows | stock time / NucEL time |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
