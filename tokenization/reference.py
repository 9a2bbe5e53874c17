"""Random access to a reference genome, for BED regions and VCF sites: `fetch(name, start, end)` -> uint8 ids.

Two kinds of reference, one interface:
- a FASTA file, plain or bgzip-compressed, read through its faidx index with pysam (htslib). An index beside the
  FASTA is used when it is newer than the file; otherwise one is built once in the user's cache
  (`$NUCEL_CACHE`, else `$XDG_CACHE_HOME/nucel`, else `~/.cache/nucel`), so read-only data folders work and
  nothing is written beside the user's files. A plain-gzip FASTA cannot be indexed: the error says what to do.
- a genome store folder (`python -m tokenization.prepare_genome`): a memmap, any input compression.

Coordinates are 0-based, half-open (BED's convention); a VCF's 1-based POS p is `fetch(chrom, p - 1, p)`.
"""

import hashlib
import os

import numpy as np

from .encoding import encode_sequence
from .genome_store import GenomeStore
from .prepare_genome import INDEX_FILE


def cache_directory():
    if os.environ.get("NUCEL_CACHE"):
        return os.environ["NUCEL_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nucel")


def compression(path):
    """'bgzf', 'gzip' or None (plain text), from the file's first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head[:2] != b"\x1f\x8b":
        return None
    return "bgzf" if len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC" else "gzip"


class FastaReference:
    """An indexed FASTA through pysam; see the module docstring for where the index lives."""

    def __init__(self, path):
        import pysam  # noqa: PLC0415  (htslib: loaded only where a FASTA reference is used)

        kind = compression(path)
        if kind == "gzip":
            raise ValueError(f"{path}: gzip-compressed but not bgzip (BGZF), so it cannot be indexed for random "
                             f"access; recompress it (`zcat {os.path.basename(path)} | bgzip > genome.fa.gz`) or "
                             "build a genome store (`nucel-prepare-genome FASTA --output DIR`) and pass DIR")
        index, compressed_index = self._index_paths(path, kind, pysam)
        try:
            self.fasta = pysam.FastaFile(path, filepath_index=index, filepath_index_compressed=compressed_index)
        except (OSError, ValueError) as failure:
            raise ValueError(f"{path}: cannot open as an indexed FASTA ({failure})") from None
        self.path = path
        self.lengths = dict(zip(self.fasta.references, self.fasta.lengths))

    @staticmethod
    def _index_paths(path, kind, pysam):
        suffixes = (".fai", ".gzi") if kind == "bgzf" else (".fai",)
        beside = [path + suffix for suffix in suffixes]
        modified = os.path.getmtime(path)
        if all(os.path.isfile(p) and os.path.getmtime(p) >= modified for p in beside):
            return beside[0], beside[1] if kind == "bgzf" else None
        stat = os.stat(path)
        key = hashlib.sha256(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:24]
        folder = os.path.join(cache_directory(), "faidx", key)
        cached = [os.path.join(folder, os.path.basename(path) + suffix) for suffix in suffixes]
        if not all(os.path.isfile(p) for p in cached):
            os.makedirs(folder, exist_ok=True)
            partial = [p + f".tmp-{os.getpid()}" for p in cached]
            options = ["--fai-idx", partial[0]] + (["--gzi-idx", partial[1]] if kind == "bgzf" else [])
            try:
                pysam.faidx(path, *options)
            except pysam.utils.SamtoolsError as failure:
                reason = str(failure).strip().splitlines()[-1] if str(failure).strip() else "faidx failed"
                raise ValueError(f"{path}: could not index the FASTA ({reason})") from None
            for source, target in zip(partial, cached):
                os.replace(source, target)
        return cached[0], cached[1] if kind == "bgzf" else None

    def fetch(self, name, start, end):
        return encode_sequence(self.fasta.fetch(name, start, end))

    def close(self):
        self.fasta.close()


class StoreReference:
    """A genome store folder; record names must be unique across its sources to be looked up."""

    def __init__(self, directory):
        self.store = GenomeStore(directory)
        self.path = directory
        self.lengths, self._ids, duplicated = {}, {}, set()
        for record_id, record in enumerate(self.store.records):
            if record["name"] in self._ids:
                duplicated.add(record["name"])
            self._ids[record["name"]] = record_id
            self.lengths[record["name"]] = record["length"]
        self._duplicated = duplicated

    def fetch(self, name, start, end):
        if name in self._duplicated:
            raise ValueError(f"{self.path}: record name '{name}' occurs in more than one source FASTA of the store; "
                             "a lookup by name is ambiguous")
        return np.array(self.store.record_tokens(self._ids[name])[start:end])

    def close(self):
        pass


class ReferenceGenome:
    """`names`, `length(name)`, `fetch(name, start, end)` (0-based half-open, clipped nowhere: out-of-range is an
    error naming the record and its length) over a FASTA file or a genome store folder."""

    def __init__(self, path):
        if os.path.isdir(path):
            if not os.path.isfile(os.path.join(path, INDEX_FILE)):
                raise ValueError(f"--reference {path}: a folder without {INDEX_FILE}; expected a FASTA file or a "
                                 "genome store (`nucel-prepare-genome FASTA --output DIR`)")
            self.source = StoreReference(path)
        elif os.path.isfile(path):
            self.source = FastaReference(path)
        else:
            raise ValueError(f"--reference {path}: not found")
        self.path = path

    @property
    def names(self):
        return list(self.source.lengths)

    def length(self, name):
        if name not in self.source.lengths:
            shown = ", ".join(self.names[:5]) + (", ..." if len(self.names) > 5 else "")
            raise ValueError(f"{self.path}: no sequence named '{name}' (it has {len(self.names)}: {shown})")
        return self.source.lengths[name]

    def fetch(self, name, start, end):
        length = self.length(name)
        if not 0 <= start <= end <= length:
            raise ValueError(f"{self.path}: {name}:{start}-{end} is outside the sequence '{name}' "
                             f"(0-based half-open; length {length:,})")
        return self.source.fetch(name, start, end)

    def close(self):
        self.source.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
