"""Streaming FASTA: plain, gzip and bgzip (multi-member gzip), multi-record, CRLF tolerated.

`scan_fasta` yields records as a header plus sequence chunks, so a whole chromosome is never held in memory;
`read_fasta` joins them into `(name, sequence)` pairs. Errors name the file and the line.
"""

import gzip
import re
import warnings
import zlib

from .alphabet import FASTA_SEQUENCE_BYTES

BLOCK_BYTES = 4 << 20
_HEADER = re.compile(rb"^>([^\n]*)\n", re.MULTILINE)
_LINE_NOISE = b"\r\n \t"  # line ends (CRLF too) and stray blanks inside sequence lines are not sequence
_ALLOWED = FASTA_SEQUENCE_BYTES + _LINE_NOISE
_INVALID = re.compile(b"[^" + re.escape(_ALLOWED) + b"]")


class FastaRecord:
    """A record being streamed: `name`, `description` (the whole header line) and `line` of its header."""

    __slots__ = ("name", "description", "line")

    def __init__(self, name, description, line):
        self.name, self.description, self.line = name, description, line


def _open(path):
    with open(path, "rb") as handle:
        magic = handle.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


class _BrokenStream(Exception):
    pass


def _blocks(path):
    """Decompressed blocks; a truncated or corrupt gzip stream raises _BrokenStream (scan_fasta adds the line)."""
    with _open(path) as handle:
        while True:
            try:
                block = handle.read(BLOCK_BYTES)
            except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as error:
                raise _BrokenStream(str(error)) from None
            if not block:
                return
            yield block


def scan_fasta(path):
    """Yield `FastaRecord` at each header, then `bytes` chunks of its sequence (line ends removed, case kept)."""
    carry, line_no, record, record_has_sequence = b"", 1, None, False

    def sequence_chunk(segment, first_line):
        nonlocal record_has_sequence
        bad = segment.translate(None, _ALLOWED) and _INVALID.search(segment)  # C-speed check, regex to locate
        if bad:
            line = first_line + segment.count(b"\n", 0, bad.start())
            if record is None:
                raise ValueError(f"{path}:{line}: sequence before the first '>' header (is this a FASTA file?)")
            raise ValueError(f"{path}:{line}: invalid character {bad.group().decode('latin-1')!r} in record "
                             f"'{record.name}' (expected A C G T N or IUPAC codes)")
        chunk = segment.translate(None, _LINE_NOISE)
        if chunk:
            if record is None:
                raise ValueError(f"{path}:{first_line}: sequence before the first '>' header (is this a FASTA file?)")
            record_has_sequence = True
        return chunk

    def end_record():
        if record is not None and not record_has_sequence:
            warnings.warn(f"{path}:{record.line}: record '{record.name}' is empty", stacklevel=3)

    blocks = _blocks(path)
    while True:
        try:
            block = next(blocks, None)
        except _BrokenStream as error:
            last_line = line_no + carry.count(b"\n")
            raise ValueError(f"{path}:{last_line}: truncated or corrupt gzip stream, readable up to this line "
                             f"({error})") from None
        if block is None:
            break
        data = carry + block
        cut = data.rfind(b"\n") + 1
        carry, data = data[cut:], data[:cut]
        position, segment_line = 0, line_no
        for header in _HEADER.finditer(data):
            chunk = sequence_chunk(data[position:header.start()], segment_line)
            if chunk:
                yield chunk
            header_line = segment_line + data.count(b"\n", position, header.start())
            end_record()
            description = header.group(1).rstrip(b"\r").decode("utf-8", errors="replace")
            name = description.split(maxsplit=1)[0] if description.strip() else ""
            if not name:
                raise ValueError(f"{path}:{header_line}: header without a record name")
            record, record_has_sequence = FastaRecord(name, description, header_line), False
            yield record
            position, segment_line = header.end(), header_line + 1
        chunk = sequence_chunk(data[position:], segment_line)
        if chunk:
            yield chunk
        line_no += data.count(b"\n")
    if carry:  # last line without a newline
        if carry.startswith(b">"):
            raise ValueError(f"{path}:{line_no}: file ends inside a header line")
        chunk = sequence_chunk(carry, line_no)
        if chunk:
            yield chunk
    if record is None:
        raise ValueError(f"{path}: no '>' header found: not a FASTA file, or empty")
    end_record()


def read_fasta(path):
    """Stream `(name, sequence)` records of a FASTA file (`.fa`, `.fa.gz`, bgzip). `name` is the header's first
    word; the sequence is returned as in the file (case kept, line ends removed)."""
    name, chunks = None, []
    for item in scan_fasta(path):
        if isinstance(item, FastaRecord):
            if name is not None:
                yield name, b"".join(chunks).decode("ascii")
            name, chunks = item.name, []
        else:
            chunks.append(item)
    if name is not None:
        yield name, b"".join(chunks).decode("ascii")
