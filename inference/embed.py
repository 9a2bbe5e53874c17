"""Embeddings of DNA of any length from a NucEL encoder.

    nucel-embed --model runs/demo --fasta reads.fa.gz --output reads.npy
    nucel-embed --model runs/demo --bed regions.bed --reference genome.fa.gz --output regions.parquet
    nucel-embed --model runs/demo --sequence ACGTTGCA... --per-base --output one.npy
    python -m nucel.inference.embed ...   (the same command)

A record longer than the window is tiled into overlapping windows (inference/tiling.py); every base counts once.
Output, one vector per record: the mean over the record's A/C/G/T bases of the stitched per-base embeddings
(N and padding excluded; [CLS]/[SEP] never included). With --per-base: one row per base, stitched back to the
record's length. `.npy` (+ `<name>.ids.tsv`: id, length, acgt_bases[, first_row][, chrom, start, end, strand
for --bed]) or Parquet (one table).
Files are written under temporary names and committed together (nucel/outputs.py). Memory stays bounded: rows go to a
memory-mapped file as windows finish, so a 5-Mbp FASTA needs about one record's bytes plus one batch.
"""

import argparse
import os
import time
from typing import Iterable, Optional, Sequence, Union

import numpy as np
import torch
from numpy.lib.format import open_memmap

from nucel import console
from nucel.commands import one_line_errors
from nucel.inference.inputs import ACGT_MASK, BedRegions, FastaRecords, SequenceTexts, reference_files
from nucel.inference.tiling import tile
from nucel.inference.windows import check_layer, check_window, is_final_layer, whole_number
from nucel.model_folder import (
    add_runtime_arguments,
    add_trust_argument,
    check_batch_size,
    load,
)
from nucel.outputs import (
    check_distinct,
    clean_leftovers,
    commit,
    naming,
    reserve,
    temporary_path,
)
from nucel.tokenization.alphabet import VOCABULARY
from nucel.tokenization.encoding import reverse_complement
from nucel.tokenization.token_layout import TokenLayout

DEFAULT_OVERLAP = 128


class Embedder:
    """Per-record or per-base embeddings of any length from a NucEL encoder (`NucELModel`).

    window: bases per window (default: 1,024 or what the model can read); overlap: bases shared by neighbouring
    windows; layer: see inference.windows.check_layer; reverse_complement_average: embed both strands and
    average them, base by base (the result is the same for a sequence and its reverse complement); layout: the
    model's token ids (`from_pretrained` reads them off the folder's tokenizer; default: this package's alphabet).
    """

    def __init__(self, encoder: torch.nn.Module, window: Optional[int] = None, overlap: int = DEFAULT_OVERLAP,
                 layer: int = -1, reverse_complement_average: bool = False, batch_size: int = 16,
                 layout: Optional[TokenLayout] = None) -> None:
        config = encoder.config
        self.encoder = encoder.eval()
        self.layout = layout or TokenLayout.for_config(config)
        self.window = check_window(window, config, layout=self.layout)
        overlap = whole_number(overlap, "--overlap")
        if not 0 <= overlap <= self.window - 3:
            raise ValueError(f"--overlap {overlap}: must be between 0 and window - 3 = {self.window - 3}")
        self.overlap, self.batch_size = overlap, check_batch_size(batch_size)
        self.layer = check_layer(layer, config.num_hidden_layers)
        self.reverse_complement_average = reverse_complement_average
        self.hidden_size = config.hidden_size

    @classmethod
    def from_pretrained(cls, model: str, device: Union[str, torch.device] = "auto", dtype: str = "auto",
                        trust_remote_code: bool = False, **options) -> "Embedder":
        """From a NucEL export or a pretraining run folder (its discriminator), a stock ModernBERT export, a cached
        Hub id, or another single-nucleotide DNA model's folder (its own code only with `trust_remote_code`)."""
        loaded = load(model, ("encoder",), device, dtype, trust_remote_code=trust_remote_code)
        return cls(loaded["encoder"], layout=loaded.layout, **options)

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    @torch.no_grad()
    def encode_pieces(self, pieces: Sequence[np.ndarray]) -> list:
        """Per-base states (length, hidden) float32 of each piece, read as one window (`TokenLayout.batch`)."""
        rows = list(pieces)
        if self.reverse_complement_average:
            rows += [reverse_complement(piece) for piece in pieces]
        input_ids, attention_mask = self.layout.batch(rows, self.device)
        final = is_final_layer(self.layer, self.encoder.config.num_hidden_layers)
        outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=not final)
        states = (outputs.last_hidden_state if final else outputs.hidden_states[self.layer]).float().cpu().numpy()
        per_base = [states[row, 1:len(piece) + 1] for row, piece in enumerate(rows)]
        if self.reverse_complement_average:  # the minus strand's base i is the plus strand's base length - 1 - i
            count = len(pieces)
            per_base = [(plus + minus[::-1]) / 2 for plus, minus in zip(per_base[:count], per_base[count:])]
        return per_base

    def windows(self, records):
        """Yield (record index, Window, its ids, its per-base states, last window of the record?) in order,
        batching windows across records."""
        pending = []

        def run():
            states = self.encode_pieces([piece for _, _, piece, _ in pending])
            for (index, window, piece, last), output in zip(pending, states):
                yield index, window, piece, output, last

        for index, (_, ids) in enumerate(records):
            tiles = tile(len(ids), self.window, self.overlap)
            for k, window in enumerate(tiles):
                pending.append((index, window, ids[window.start:window.end], k == len(tiles) - 1))
                if len(pending) == self.batch_size:
                    yield from run()
                    pending = []
        if pending:
            yield from run()

    def embed_into(self, records: Iterable, lengths: Sequence[int], out: np.ndarray, per_base: bool = False,
                   progress=None) -> np.ndarray:
        """Fill `out` (zeros; per record: (records, hidden); per base: (sum of lengths, hidden), records one after
        another) from `records` ((name, uint8 ids) with no empty or N-only record when pooling)."""
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        total, real = np.zeros(self.hidden_size, dtype=np.float64), 0.0
        for index, window, piece, states, last in self.windows(records):
            if per_base:
                rows = slice(offsets[index] + window.start, offsets[index] + window.end)
                out[rows] += window.weights[:, None] * states
            else:
                share = window.weights * ACGT_MASK[piece]
                total += share @ states
                real += float(share.sum())
                if last:
                    out[index] = total / real
                    total, real = np.zeros(self.hidden_size, dtype=np.float64), 0.0
            if progress is not None:
                progress.update(float(window.weights.sum()))
        return out

    def embed(self, sequences: Union[str, Sequence[str]], per_base: bool = False) -> Union[np.ndarray, list]:
        """Python use: one str -> (hidden,) (or (length, hidden) per base); a list -> (n, hidden) (or a list)."""
        single = isinstance(sequences, str)
        source = SequenceTexts([sequences] if single else list(sequences))
        infos = source.describe()
        for info in infos:
            problem = record_problem(info, per_base)
            if problem:
                raise ValueError(f"{info.where}: {problem}")
        lengths = [info.length for info in infos]
        out = np.zeros((sum(lengths) if per_base else len(infos), self.hidden_size), dtype=np.float32)
        self.embed_into(source, lengths, out, per_base)
        if per_base:
            pieces = np.split(out, np.cumsum(lengths)[:-1])
            return pieces[0] if single else pieces
        return out[0] if single else out


def record_problem(info, per_base):
    """Why a record cannot be embedded, or None: empty, or (pooled) no A/C/G/T base to average over."""
    if info.length == 0:
        return f"record '{info.name}' is empty: nothing to embed"
    if not per_base and info.acgt == 0:
        return f"record '{info.name}' holds no A/C/G/T base (only N): a mean over its bases is undefined"
    return None


# ------------------------------------------------------------------------------------------------ files
def output_paths(output, fmt):
    if os.path.isdir(output):
        raise ValueError(f"--output {output}: is a folder; give a file name (.npy or .parquet)")
    if fmt == "npy":
        if not output.endswith(".npy"):
            raise ValueError(f"--output {output}: expected a .npy file for --format npy (the ids go beside it in "
                             "<name>.ids.tsv)")
        return output, output[:-len(".npy")] + ".ids.tsv"
    return output, None


def write_ids(path, infos, per_base):
    """The ids TSV: id, length, acgt_bases[, first_row]; for BED records also chrom, start, end, strand (the BED
    line: 0-based, end excluded; for strand '-' the record is the reverse complement, so its position i is genome
    position end - 1 - i)."""
    offsets = np.concatenate([[0], np.cumsum([info.length for info in infos])])
    regions = [info.region for info in infos]  # BED records only
    bed = any(region is not None for region in regions)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("id\tlength\tacgt_bases" + ("\tfirst_row" if per_base else "")
                     + ("\tchrom\tstart\tend\tstrand" if bed else "") + "\n")
        for info, offset, region in zip(infos, offsets, regions):
            where = "" if not bed else "\t\t\t\t" if region is None else \
                f"\t{region.chrom}\t{region.start}\t{region.end}\t{region.strand}"
            handle.write(f"{info.name}\t{info.length}\t{info.acgt}" + (f"\t{offset}" if per_base else "") + where
                         + "\n")


def write_parquet(path, rows, infos, per_base, source, block=65536):
    """A Parquet table from the finished rows: id, length, acgt_bases, embedding (per record) or id, position,
    base, embedding (per base), streamed in row groups. BED records also get chrom, start, end, strand (their BED
    line, as in write_ids) and, per base, genome_position (0-based, like position: start + position, or for strand
    '-' end - 1 - position)."""
    import pyarrow as pa  # noqa: PLC0415  (heavy: only a .parquet output needs it)
    import pyarrow.parquet as pq  # noqa: PLC0415  (heavy: only a .parquet output needs it)

    hidden = rows.shape[1]
    vector = pa.list_(pa.float32(), hidden)
    regions = [info.region for info in infos]  # BED records only
    if not any(region is not None for region in regions):
        regions = None
    region_types = [("chrom", pa.string()), ("start", pa.int64()), ("end", pa.int64()), ("strand", pa.string())]
    if not per_base:
        columns = {"id": [i.name for i in infos], "length": [i.length for i in infos],
                   "acgt_bases": [i.acgt for i in infos]}
        if regions:
            columns.update({name: pa.array([getattr(region, name) if region is not None else None
                                            for region in regions], kind) for name, kind in region_types})
        columns["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(np.asarray(rows).ravel()), hidden)
        pq.write_table(pa.table(columns), path)
        return
    schema = pa.schema([("id", pa.string()), ("position", pa.int64()), ("base", pa.string()),
                        *((*region_types, ("genome_position", pa.int64())) if regions else ()), ("embedding", vector)])
    letters = np.array([token if len(token) == 1 else "?" for token in VOCABULARY])
    with pq.ParquetWriter(path, schema) as writer:
        offset = 0
        for index, (info, (_, ids)) in enumerate(zip(infos, source)):
            region = regions[index] if regions else None
            for start in range(0, info.length, block):
                end = min(start + block, info.length)
                flat = np.ascontiguousarray(rows[offset + start:offset + end]).ravel()
                positions = np.arange(start, end, dtype=np.int64)
                columns = {"id": [info.name] * (end - start), "position": positions, "base": letters[ids[start:end]]}
                if regions:
                    count = end - start
                    columns.update({"chrom": [region.chrom if region else None] * count,
                                    "start": [region.start if region else None] * count,
                                    "end": [region.end if region else None] * count,
                                    "strand": [region.strand if region else None] * count,
                                    "genome_position": [None] * count if region is None else
                                    region.genome_interval(positions, positions + 1)[0]})
                columns["embedding"] = pa.FixedSizeListArray.from_arrays(flat, hidden)
                writer.write_table(pa.table(columns, schema=schema))
            offset += info.length


def embed_to_file(embedder, source, output, fmt="npy", per_base=False, quiet=False, log=print):
    """Embed every record of `source` into `output` (see the module docstring); returns a summary dict."""
    main_path, ids_path = output_paths(output, fmt)
    infos = source.describe()
    seen = {}
    for info in infos:
        if info.name in seen:
            raise ValueError(f"{info.where}: record name '{info.name}' repeats {seen[info.name]}; names identify "
                             "rows of the output")
        seen[info.name] = info.where
    kept, skipped = [], []
    for info in infos:
        problem = record_problem(info, per_base)
        if problem:
            log(f"warning: {info.where}: {problem}; skipped")
            skipped.append(info)
        else:
            kept.append(info)
    if not kept:
        raise ValueError(f"{output}: no record could be embedded ({len(skipped)} skipped, see the warnings)")
    keep = {info.name for info in kept}

    def kept_records():
        return ((name, ids) for name, ids in source if name in keep)

    lengths = [info.length for info in kept]
    os.makedirs(os.path.dirname(os.path.abspath(main_path)), exist_ok=True)
    rows_final = main_path if fmt == "npy" else f"{main_path}.rows"
    for final in {main_path, rows_final, ids_path} - {None}:
        clean_leftovers(final)
    partial, rows_path = temporary_path(main_path), temporary_path(rows_final)
    ids_partial = temporary_path(ids_path) if ids_path else None
    created = [rows_path, partial, ids_partial]
    started = time.perf_counter()
    try:
        shape = (sum(lengths) if per_base else len(kept), embedder.hidden_size)
        with naming(rows_path):
            rows = open_memmap(rows_path, mode="w+", dtype=np.float32, shape=shape)  # a new file reads as zeros
        reserve(rows_path, os.path.getsize(rows_path))
        with console.progress(sum(lengths), unit="bp", unit_scale=True, desc="embed", enabled=not quiet) as progress:
            embedder.embed_into(kept_records(), lengths, rows, per_base, progress)
        rows.flush()
        if fmt == "npy":
            del rows
            with naming(ids_partial):
                write_ids(ids_partial, kept, per_base)
            commit([(partial, main_path), (ids_partial, ids_path)])  # the ids last: they describe the rows
        else:
            with naming(partial):
                write_parquet(partial, rows, kept, per_base, kept_records())
            del rows
            commit([(partial, main_path)])
    finally:
        for path in created:
            if path and os.path.exists(path):
                os.remove(path)
    seconds = time.perf_counter() - started
    bases = sum(lengths)
    summary = {"records": len(kept), "bases": bases, "skipped": [info.name for info in skipped],
               "seconds": seconds, "bases_per_second": bases / seconds if seconds else float("inf"),
               "output": main_path, "ids": ids_path}
    written = main_path + (f" + {ids_path}" if ids_path else "")
    log(f"embedded {len(kept):,} record(s), {bases:,} bp, in {seconds:.1f} s ({summary['bases_per_second']:,.0f} "
        f"bp/s) -> {written}" + (f"; skipped {len(skipped)}: " + ", ".join(f"'{i.name}'" for i in skipped[:5])
                                 if skipped else ""))
    return summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a NucEL export (e.g. runs/demo/discriminator), a pretraining "
                                                        "run folder (its discriminator is used), a stock ModernBERT "
                                                        "export, a cached Hub id, or another single-nucleotide DNA "
                                                        "model's folder")
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--fasta", help="FASTA file (.fa, .fa.gz, bgzip), any number of records")
    inputs.add_argument("--bed", help="BED regions (0-based half-open; name column 4, strand column 6), with "
                                      "--reference")
    inputs.add_argument("--sequence", nargs="+", help="one or more DNA sequences (named seq1, seq2, ...)")
    parser.add_argument("--reference", help="with --bed: a FASTA (plain or bgzip, indexed on first use) or a "
                                            "genome store folder")
    parser.add_argument("--output", required=True, help="out.npy (+ out.ids.tsv) or out.parquet")
    parser.add_argument("--format", choices=("npy", "parquet"), help="default: from the --output suffix")
    parser.add_argument("--per-base", action="store_true", help="one embedding per base instead of per record")
    parser.add_argument("--window", type=int, help="bases per window (default: 1024, or what the model reads)")
    parser.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP, help="bases shared by neighbouring windows")
    parser.add_argument("--layer", type=int, default=-1, help="0: token embeddings, i: after layer i, -1: final")
    parser.add_argument("--reverse-complement-average", action="store_true",
                        help="embed both strands and average (strand-symmetric embeddings)")
    add_runtime_arguments(parser, batch_size=16)
    add_trust_argument(parser)
    args = parser.parse_args(argv)
    if args.bed and not args.reference:
        parser.error("--bed needs --reference (the genome the regions are on)")
    if args.reference and not args.bed:
        parser.error("--reference is read with --bed only")
    args.format = args.format or ("parquet" if args.output.endswith(".parquet") else "npy")
    return args


def main(argv=None):
    args = parse_args(argv)
    console.apply_output_options(args)
    main_path, ids_path = output_paths(args.output, args.format)
    check_distinct({"--output": main_path, "--output (its ids file)": ids_path}, {
        "--model": args.model, "--fasta": args.fasta, "--bed": args.bed,
        **reference_files(args.reference)})
    if args.fasta:
        source = FastaRecords(args.fasta)
    elif args.bed:
        source = BedRegions(args.bed, args.reference)
    else:
        source = SequenceTexts(args.sequence)
    embedder = Embedder.from_pretrained(args.model, device=args.device, dtype=args.dtype,
                                        trust_remote_code=args.trust_remote_code, window=args.window,
                                        overlap=args.overlap, layer=args.layer, batch_size=args.batch_size,
                                        reverse_complement_average=args.reverse_complement_average)
    return embed_to_file(embedder, source, args.output, args.format, args.per_base, args.quiet)


cli = one_line_errors(main)


if __name__ == "__main__":
    cli()
