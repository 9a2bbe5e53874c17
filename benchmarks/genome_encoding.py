"""Throughput of the three ways to turn DNA into token ids, on one core, in one process; prints a table.

    python benchmarks/genome_encoding.py [--fasta ../shared/data/genomes/hg19_chr22_1-22000000.fa.gz]

- encode_sequence: the byte-table encoder on the whole record already in memory;
- prepare_genome: FASTA.gz -> genome store end to end (gunzip, parse, validate, encode, write, SHA-256);
- gunzip alone (zlib, as prepare_genome reads the file): the floor under prepare_genome, per decompressed byte;
- HF tokenizer: the nucleotide PreTrainedTokenizerFast on 1,024-bp chunks in batches of 256 (the stock path).
"""

import argparse
import os
import tempfile
import time
import zlib

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core for every path
os.environ["RAYON_NUM_THREADS"] = "1"

from _harness import SHARED_GENOMES

from nucel.tokenization import encode_sequence, load_tokenizer, read_fasta
from nucel.tokenization.prepare_genome import prepare_genome

DEFAULT_FASTA = os.path.join(SHARED_GENOMES, "hg19_chr22_1-22000000.fa.gz")


def best_of(repeats, function):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fasta", default=DEFAULT_FASTA)
    parser.add_argument("--hf-mbp", type=float, default=2.0, help="Mbp of sequence given to the HF tokenizer")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    sequence = "".join(s for _, s in read_fasta(args.fasta))
    total = len(sequence)

    encode_s = best_of(args.repeats, lambda: encode_sequence(sequence))

    with tempfile.TemporaryDirectory() as scratch:
        def prepare():
            for name in os.listdir(scratch):
                os.remove(os.path.join(scratch, name))
            prepare_genome([args.fasta], scratch, log=lambda *_: None)
        prepare_s = best_of(args.repeats, prepare)

    with open(args.fasta, "rb") as handle:
        compressed = handle.read()
    text_bytes = len(zlib.decompress(compressed, wbits=31))
    gunzip_s = best_of(args.repeats, lambda: zlib.decompress(compressed, wbits=31))

    tokenizer = load_tokenizer("nucleotide")
    real = sequence.replace("N", "").replace("n", "")  # skip the N run at the start of chr22
    hf_bp = min(int(args.hf_mbp * 1e6), len(real))
    chunks = [real[i:i + 1024] for i in range(0, hf_bp, 1024)]

    def hf():
        for i in range(0, len(chunks), 256):
            tokenizer(chunks[i:i + 256])["input_ids"]
    hf_s = best_of(args.repeats, hf)

    rates = {"encode_sequence (in memory)": total / encode_s, "prepare_genome (FASTA.gz -> store)": total / prepare_s,
             "gunzip alone (zlib; Mbp/s = decompressed MB/s)": text_bytes / gunzip_s,
             "HF tokenizer (1,024-bp chunks, batch 256)": hf_bp / hf_s}
    hf_rate = rates["HF tokenizer (1,024-bp chunks, batch 256)"]
    print(f"\n{os.path.basename(args.fasta)}: {total:,} bp; one thread; best of {args.repeats}\n")
    print("| path | Mbp/s | x HF tokenizer |")
    print("|---|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate / 1e6:,.1f} | {rate / hf_rate:,.1f} |")
    print("\ngoals: encode_sequence >= 500 Mbp/s and >= 50x the HF tokenizer; prepare_genome >= 300 Mbp/s end to end")


if __name__ == "__main__":
    main()
