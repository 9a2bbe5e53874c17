"""Random access to a reference genome, for BED regions and VCF sites: `fetch(name, start, end)` -> uint8 ids.

Two kinds of reference, one interface:
- a FASTA file, plain or bgzip-compressed, read through its faidx index with pysam (htslib). An index beside the
  FASTA is used when it is newer than the file and agrees with it (every record's header sits just before the
  offset the index gives, and its last base just before the next header or the end of the file: a stale index
  would return other bases without a word); otherwise one is built once in the user's cache (`$NUCEL_CACHE`, else
  `$XDG_CACHE_HOME/nucel`, else `~/.cache/nucel`), so read-only data folders work and nothing is written beside
  the user's files. A plain-gzip FASTA cannot be indexed: the error says what to do.
- a genome store folder (`nucel prepare-genome`): a memmap, any input compression.

Coordinates are 0-based, half-open (BED's convention); a VCF's 1-based POS p is `fetch(chrom, p - 1, p)`.
"""

import bisect
import hashlib
import os
import struct
import zlib

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
                             "build a genome store (`nucel prepare-genome FASTA --output-dir DIR`) and pass DIR")
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
        if all(os.path.isfile(p) and os.path.getmtime(p) >= modified for p in beside) \
                and index_agrees(path, *beside):
            return beside[0], beside[1] if kind == "bgzf" else None
        # The cache's index is built here from the file as it is (its key changes with the file's size and time).
        stat = os.stat(path)
        key = hashlib.sha256(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:24]
        folder = os.path.join(cache_directory(), "faidx", key)
        cached = [os.path.join(folder, os.path.basename(path) + suffix) for suffix in suffixes]
        if not all(os.path.isfile(p) for p in cached):
            partial = [p + f".tmp-{os.getpid()}" for p in cached]
            options = ["--fai-idx", partial[0]] + (["--gzi-idx", partial[1]] if kind == "bgzf" else [])
            try:
                os.makedirs(folder, exist_ok=True)
                pysam.faidx(path, *options)
                for source, target in zip(partial, cached):
                    os.replace(source, target)
            except OSError as failure:
                raise ValueError(f"{path}: its index (none beside it, or a stale one) must be built, and the cache "
                                 f"folder {folder} is not writable ({failure.strerror or failure}); set NUCEL_CACHE "
                                 "to a writable folder") from None
            except pysam.utils.SamtoolsError as failure:
                reason = str(failure).strip().splitlines()[-1] if str(failure).strip() else "faidx failed"
                raise ValueError(f"{path}: could not index the FASTA ({reason})") from None
            finally:
                for leftover in partial:
                    if os.path.exists(leftover):
                        os.remove(leftover)
        return cached[0], cached[1] if kind == "bgzf" else None

    def fetch(self, name, start, end):
        return encode_sequence(self.fasta.fetch(name, start, end))

    def close(self):
        self.fasta.close()


class UncompressedBytes:
    """Bytes of a plain or BGZF file by their uncompressed offset (BGZF: through its .gzi block table)."""

    def __init__(self, path, gzi=None):
        self.handle = open(path, "rb")
        self.blocks = None
        if gzi is not None:
            with open(gzi, "rb") as table:
                data = table.read()
            count = struct.unpack("<Q", data[:8])[0]
            pairs = [struct.unpack("<QQ", data[8 + 16 * i:24 + 16 * i]) for i in range(count)]
            self.blocks = [(0, 0)] + sorted((uncompressed, compressed) for compressed, uncompressed in pairs)
            self.starts = [start for start, _ in self.blocks]
            self.decoded = {}

    def _block(self, number):
        if number not in self.decoded:
            self.handle.seek(self.blocks[number][1])
            header = self.handle.read(18)
            if len(header) < 18 or header[:4] != b"\x1f\x8b\x08\x04":
                raise ValueError("not a BGZF block")
            body = self.handle.read(struct.unpack("<H", header[16:18])[0] + 1 - 18)
            if len(self.decoded) > 4:  # reads go forward, record by record: a few recent blocks suffice
                self.decoded.pop(next(iter(self.decoded)))
            self.decoded[number] = zlib.decompress(body[:-8], -15)
        return self.decoded[number]

    def read(self, start, end):
        if self.blocks is None:
            self.handle.seek(start)
            return self.handle.read(end - start)
        number, pieces = bisect.bisect_right(self.starts, start) - 1, []
        while start < end and number < len(self.blocks):
            block = self._block(number)
            pieces.append(block[start - self.starts[number]:end - self.starts[number]])
            number += 1
            if number < len(self.blocks):
                start = max(start, self.starts[number])
        return b"".join(pieces)

    def close(self):
        self.handle.close()


def index_agrees(path, fai, gzi=None, header_bytes=65536):
    """Whether the faidx index `fai` (and `gzi`, for BGZF) describes `path` as it is now: each record's header
    line ends just before the offset the index gives, and the record's last base (by its length and line layout)
    is followed by line ends and then the next header or the end of the file."""
    try:
        reader = UncompressedBytes(path, gzi)
    except (OSError, struct.error):
        return False
    try:
        with open(fai, encoding="utf-8") as handle:
            for line in handle:
                name, length, offset, line_bases, line_width = line.rstrip("\n").split("\t")[:5]
                length, offset, line_bases, line_width = map(int, (length, offset, line_bases, line_width))
                if line_bases < 1 or line_width < line_bases or offset < 1:
                    return False
                for back in (1024, header_bytes):  # most header lines are short: read a little first
                    before = reader.read(max(0, offset - back), offset)
                    if b"\n" in before[:-1] or back >= offset:
                        break
                if not before.endswith(b"\n"):
                    return False
                header = before[:-1].rstrip(b"\r").rsplit(b"\n", 1)[-1]
                if not header.startswith(b">") or header[1:].split()[:1] != [name.encode()]:
                    return False
                if length:
                    last = offset + (length - 1) // line_bases * line_width + (length - 1) % line_bases
                    after = reader.read(last, last + 258)
                    if not after[:1] or after[:1] in b">\r\n" or not (
                            after[1:].lstrip(b"\r\n").startswith(b">") or len(after) < 258
                            and not after[1:].strip(b"\r\n")):
                        return False
    except (OSError, ValueError, UnicodeDecodeError, zlib.error, struct.error):
        return False
    finally:
        reader.close()
    return True


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
        return self.store.record_tokens(self._ids[name], start, end)

    def close(self):
        pass


class ReferenceGenome:
    """`names`, `length(name)`, `fetch(name, start, end)` (0-based half-open, clipped nowhere: out-of-range is an
    error naming the record and its length) over a FASTA file or a genome store folder."""

    def __init__(self, path):
        if os.path.isdir(path):
            if not os.path.isfile(os.path.join(path, INDEX_FILE)):
                raise ValueError(f"--reference {path}: a folder without {INDEX_FILE}; expected a FASTA file or a "
                                 "genome store (`nucel prepare-genome FASTA --output-dir DIR`)")
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
