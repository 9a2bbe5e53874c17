"""Encode FASTA files into an on-disk genome store: `tokens.u8` (one byte per base, a memmap: the token id, with
alphabet.REPEAT_BIT set where the FASTA had a lower-case, soft-masked letter) and `index.json` (records, offsets,
lengths, N and repeat counts, source checksums).

    python -m nucel.tokenization.prepare_genome genome.fa.gz [more.fa ...] --output DIR
    nucel-prepare-genome genome.fa.gz --output DIR

Memory stays constant (4 MB blocks); disk is one byte per base. Re-running on unchanged inputs is a no-op;
a changed input (by SHA-256) rebuilds the store. Files are written under temporary names and renamed, the old index
removed first and the new one renamed in last, so an interrupted run never leaves a store that looks complete.
While it builds, the store's `.nucel-store.lock` is held: a second build, or a reader on another process or node
(GenomeStore), is refused with one line naming the builder instead of reading a partial store.
"""

import argparse
import json
import os

import numpy as np

from nucel.commands import one_line_errors
from nucel.console import add_output_options, apply_output_options, progress
from nucel.files import file_sha256, read_json_object
from nucel.run_directory import RunLock

from . import alphabet
from .fasta import EmptyRecord, FastaRecord, scan_fasta

# 2: the repeat bit (soft-masked bases) and per-record repeat counts; 1 had ids only
FORMAT_VERSION = 2
INDEX_FILE = "index.json"
TOKENS_FILE = "tokens.u8"
BUILD_LOCK = ".nucel-store.lock"


def build_lock(output_dir):
    """The lock a store's builder holds (readers only look at it: GenomeStore)."""
    return RunLock(output_dir, BUILD_LOCK, busy="genome store being built by another process",
                   advice="wait for that `nucel prepare-genome` (or pretraining run) to finish, then run again")


def describe_sources(fasta_paths):
    """Path, size and SHA-256 of every FASTA file; the same content given twice is refused (it would silently
    count twice in the store)."""
    sources, seen = [], {}
    for path in fasta_paths:
        if not os.path.isfile(path):
            raise ValueError(f"{path}: FASTA file not found")
        try:
            digest = file_sha256(path)
        except OSError as failure:
            raise ValueError(f"{path}: unreadable FASTA file ({failure.strerror})") from None
        if digest in seen:
            same = "is given twice" if os.path.abspath(path) == os.path.abspath(seen[digest]) else \
                f"has the same content as {seen[digest]}"
            raise ValueError(f"{path}: {same} (sha256 {digest[:16]}...); give each genome once")
        seen[digest] = path
        sources.append({"path": os.path.abspath(path), "bytes": os.path.getsize(path), "sha256": digest})
    return sources


def sources_checksum(sources):
    """Identifies a store's content: its sources' SHA-256, in order."""
    return "-".join(source["sha256"][:16] for source in sources)


INDEX_KEYS = ("format_version", "vocabulary", "sources", "records", "total_length")


def load_index(output_dir):
    """The store's index.json, or None where there is none; a corrupt one is named in one line."""
    path = os.path.join(output_dir, INDEX_FILE)
    if not os.path.exists(path):
        return None
    return read_json_object(path, "genome-store index", INDEX_KEYS,
                            hint="delete the store folder and prepare it again")


def is_up_to_date(index, sources, tokens_path):
    """Same format, alphabet and input checksums (paths may move), and a complete tokens file."""
    return (index is not None and index.get("format_version") == FORMAT_VERSION
            and index.get("vocabulary") == list(alphabet.VOCABULARY)
            and [s["sha256"] for s in index["sources"]] == [s["sha256"] for s in sources]
            and os.path.exists(tokens_path) and os.path.getsize(tokens_path) == index["total_length"])


def prepare_genome(fasta_paths, output_dir, log=print, sources=None):
    """Build (or reuse) the store for `fasta_paths` in `output_dir`; returns the index dict. `sources`: their
    `describe_sources`, when the caller already hashed them."""
    if not fasta_paths:
        raise ValueError("prepare_genome: no FASTA files given")
    sources = sources or describe_sources(fasta_paths)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"{output_dir}: exists and is not a directory (the genome store is a folder)")
    os.makedirs(output_dir, exist_ok=True)
    lock = build_lock(output_dir)
    if lock.held_elsewhere() is None:  # a ready store is reused without writing (it may be read-only, shared)
        ready = _ready_index(output_dir, sources, log, warn=False)
        if ready is not None:
            return ready
    with lock.acquire():
        return _prepare_locked(fasta_paths, output_dir, log, sources)


def _ready_index(output_dir, sources, log, warn=True):
    """The index of a complete store of `sources` in `output_dir` (reported), or None; a corrupt index is this
    store's own, rebuilt (`warn`: say so)."""
    try:
        existing = load_index(output_dir)
    except ValueError as corrupt:
        if warn:
            log(f"warning: {corrupt}; rebuilding")
        return None
    if not is_up_to_date(existing, sources, os.path.join(output_dir, TOKENS_FILE)):
        return None
    log(f"genome store {output_dir}: up to date ({existing['total_length']:,} bp, {len(existing['records'])} records)")
    return existing


def _prepare_locked(fasta_paths, output_dir, log, sources):
    ready = _ready_index(output_dir, sources, log)  # again, under the lock: another builder may have finished it
    if ready is not None:
        return ready
    tokens_path = os.path.join(output_dir, TOKENS_FILE)

    records, empty, offset = [], [], 0
    total_bytes = sum(source["bytes"] for source in sources)
    # bp/s with an ETA: the total is estimated from the bases per file byte read so far (gzip hides the length)
    with open(tokens_path + ".tmp", "wb") as tokens, progress(unit="bp", unit_scale=True, desc="genome") as bar:
        for source_id, source in enumerate(sources):
            names = {}
            estimate = total_estimate(bar, total_bytes, sum(earlier["bytes"] for earlier in sources[:source_id]))
            for item in scan_fasta(fasta_paths[source_id], encode=True, on_read=estimate, soft_mask=True):
                if isinstance(item, EmptyRecord):  # reported here and kept in the index with length 0
                    empty.append(item.message)
                    log(f"warning: {item.message}")
                    continue
                if isinstance(item, FastaRecord):
                    if item.name in names:
                        raise ValueError(f"{fasta_paths[source_id]}:{item.line}: duplicate record name "
                                         f"'{item.name}' (first at line {names[item.name]})")
                    names[item.name] = item.line
                    record = {"name": item.name, "description": item.description, "source": source_id,
                              "offset": offset, "length": 0, "n_count": 0, "repeat_count": 0}
                    records.append(record)
                    continue
                tokens.write(item)
                bar.update(len(item))
                record["length"] += len(item)
                stored = np.frombuffer(item, dtype=np.uint8)
                record["n_count"] += int(np.count_nonzero((stored & alphabet.TOKEN_BITS) == alphabet.N_ID))
                record["repeat_count"] += int(np.count_nonzero(stored & alphabet.REPEAT_BIT))
                offset += len(item)
    if offset == 0:
        raise ValueError(f"{', '.join(fasta_paths)}: no sequence in any record")

    index = {"format_version": FORMAT_VERSION, "vocabulary": list(alphabet.VOCABULARY), "sources": sources,
             "records": records, "total_length": offset, "n_count": sum(r["n_count"] for r in records),
             "repeat_count": sum(r["repeat_count"] for r in records), "empty_records": empty}
    with open(os.path.join(output_dir, INDEX_FILE + ".tmp"), "w", encoding="utf-8") as handle:
        json.dump(index, handle, indent=1)
    # The index is the store's completion record: the old one goes before the new bases move in, so a kill between
    # the renames leaves a store without an index (rebuilt on the next run), never one genome's bases under
    # another's index.
    index_path = os.path.join(output_dir, INDEX_FILE)
    if os.path.exists(index_path):
        os.remove(index_path)
    os.replace(tokens_path + ".tmp", tokens_path)
    os.replace(index_path + ".tmp", index_path)
    log(f"genome store {output_dir}: {offset:,} bp in {len(records)} records from {len(sources)} file(s), "
        f"{index['n_count']:,} N ({index['n_count'] / offset:.1%}), {index['repeat_count']:,} soft-masked "
        f"({index['repeat_count'] / offset:.1%})")
    return index


def total_estimate(bar, total_bytes, bytes_before):
    """scan_fasta's `on_read` for one file of a store: sets `bar.total` (bp) to the bases so far per file byte read
    (this file's bytes after the `bytes_before` of the earlier files) times `total_bytes`. The bases of a read are
    counted before the next read, so the previous read's position is the one they belong to."""
    previous = [0]

    def estimate(read):
        if bar.n and previous[0]:
            bar.total = max(bar.n, round(bar.n * total_bytes / (bytes_before + previous[0])))
        previous[0] = read
    return estimate


def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fasta", nargs="+", help="FASTA files (.fa, .fa.gz, bgzip)")
    # --output-dir as every command names the folder it writes; --output: its first spelling, still accepted
    parser.add_argument("--output-dir", "--output", dest="output_dir", required=True, help="store directory")
    add_output_options(parser)
    args = parser.parse_args(argv)
    apply_output_options(args)
    prepare_genome(args.fasta, args.output_dir)


main = one_line_errors(run)


if __name__ == "__main__":
    main()
