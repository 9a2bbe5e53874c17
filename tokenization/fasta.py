"""Streaming FASTA: plain, gzip and bgzip (multi-member gzip), multi-record, CRLF tolerated.

`scan_fasta` yields records as a header plus sequence chunks, so a whole chromosome is never held in memory;
`read_fasta` joins them into `(name, sequence)` pairs. Errors name the file and the line.

Speed (benchmarks/genome_encoding.py): every step over the sequence bytes is one C-level pass with no Python per line —
zlib straight on 1-MB reads (the gzip module's reader is ~1.7x slower), `find(b">")` for headers (a multiline
regex scans ~5x slower), one `replace` for line ends and one `translate` that checks and encodes at once;
line numbers come from the length the line ends took, so nothing counts newlines.
"""

import warnings
import zlib

from .alphabet import BYTE_TO_ID, BYTE_TO_STORED, FASTA_SEQUENCE_BYTES

BLOCK_BYTES = 4 << 20  # decompressed bytes parsed at a time: memory stays constant
COMPRESSED_READ_BYTES = 1 << 20
_LINE_NOISE = b"\n\r \t"  # line ends (CRLF too) and stray blanks inside sequence lines are not sequence
_NOISE, _INVALID = 0xFE, 0xFF  # what the checking tables map those bytes to


def _checking_table(values):
    """A bytes.translate table: sequence bytes to `values[byte]`, line noise to _NOISE, anything else to _INVALID."""
    table = bytearray([_INVALID]) * 256
    for byte in FASTA_SEQUENCE_BYTES:
        table[byte] = values[byte]
    for byte in _LINE_NOISE:
        table[byte] = _NOISE
    return bytes(table)


_TEXT_TABLE = _checking_table(range(256))  # sequence bytes kept as they are (case too)
_ID_TABLE = _checking_table(BYTE_TO_ID.tolist())  # sequence bytes to token ids
_STORED_TABLE = _checking_table(BYTE_TO_STORED.tolist())  # token ids with the repeat bit on lower case (the store)


class FastaRecord:
    """A record being streamed: `name`, `description` (the whole header line) and `line` of its header."""

    __slots__ = ("name", "description", "line")

    def __init__(self, name, description, line):
        self.name, self.description, self.line = name, description, line


class EmptyRecord:
    """In the stream right after a record that held no sequence (`record`, its FastaRecord): `message` says so,
    naming the file and line. Callers report it; nothing is skipped silently."""

    __slots__ = ("record", "message")

    def __init__(self, record, path):
        self.record = record
        self.message = f"{path}:{record.line}: record '{record.name}' is empty"


class _BrokenStream(Exception):
    pass


def _decompressed(handle, on_read=None):
    """Blocks of at most BLOCK_BYTES from a gzip stream of one or more members (bgzip: many)."""
    decompressor, pending = zlib.decompressobj(wbits=31), b""
    while True:
        if not pending:
            pending = handle.read(COMPRESSED_READ_BYTES)
            if on_read is not None:
                on_read(handle.tell())
            if not pending:
                if not decompressor.eof:
                    raise _BrokenStream("compressed file ended before the end-of-stream marker was reached")
                return
        if decompressor.eof:  # the next member
            decompressor = zlib.decompressobj(wbits=31)
        try:
            block = decompressor.decompress(pending, BLOCK_BYTES)
        except zlib.error as error:
            raise _BrokenStream(str(error)) from None
        pending = decompressor.unused_data if decompressor.eof else decompressor.unconsumed_tail
        if block:
            yield block


def _blocks(path, on_read=None):
    """Decompressed blocks; a truncated or corrupt gzip stream raises _BrokenStream (scan_fasta adds the line).
    `on_read(bytes of the file read so far)` after every read, for a progress bar."""
    with open(path, "rb") as handle:
        if handle.read(2) == b"\x1f\x8b":
            handle.seek(0)
            yield from _decompressed(handle, on_read)
            return
        handle.seek(0)
        while block := handle.read(BLOCK_BYTES):
            if on_read is not None:
                on_read(handle.tell())
            yield block


def scan_fasta(path, encode=False, on_read=None, soft_mask=False):
    """Yield `FastaRecord` at each header, then `bytes` chunks of its sequence: the letters as in the file (line ends
    removed, case kept), or with `encode=True` the alphabet's token ids (what `encode_sequence` gives); after a
    record without sequence, an `EmptyRecord`. `on_read(bytes of the file read so far)`: called after each read of
    the file (a progress bar's estimate of how much is left). `soft_mask=True` (with `encode`): lower-case letters
    keep alphabet.REPEAT_BIT beside their id (the genome store's bytes)."""
    table = (_STORED_TABLE if soft_mask else _ID_TABLE) if encode else _TEXT_TABLE
    carry, line_no, record, record_has_sequence = b"", 1, None, False

    def sequence_chunk(segment, first_line):
        """The segment's sequence, checked; `first_line` is its first line's number."""
        nonlocal record_has_sequence
        joined = segment.replace(b"\n", b"")
        chunk = joined.translate(table)
        if _INVALID in chunk:  # the error path: locate the byte in the segment as read, line ends included
            bad = segment.translate(table).index(_INVALID)
            line = first_line + segment.count(b"\n", 0, bad)
            if record is None:
                raise ValueError(f"{path}:{line}: sequence before the first '>' header (is this a FASTA file?)")
            byte = segment[bad]
            what = f"character {chr(byte)!r}" if 32 < byte < 127 else f"byte 0x{byte:02x}"
            raise ValueError(f"{path}:{line}: invalid {what} in record '{record.name}' "
                             "(expected A C G T N or IUPAC codes)")
        if _NOISE in chunk:
            chunk = chunk.replace(bytes([_NOISE]), b"")
        if chunk:
            if record is None:
                raise ValueError(f"{path}:{first_line}: sequence before the first '>' header (is this a FASTA file?)")
            record_has_sequence = True
        return chunk, len(segment) - len(joined)  # the chunk, and how many lines the segment ended

    def ended_empty():
        """The EmptyRecord for the record just ended, or None when it held sequence."""
        return EmptyRecord(record, path) if record is not None and not record_has_sequence else None

    blocks = _blocks(path, on_read)
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
        position = 0
        while position < len(data):
            header = _next_header(data, position)
            chunk, lines = sequence_chunk(data[position:header], line_no)
            line_no += lines
            if chunk:
                yield chunk
            if header == len(data):
                break
            end = data.index(b"\n", header)
            if empty := ended_empty():
                yield empty
            description = data[header + 1:end].rstrip(b"\r").decode("utf-8", errors="replace")
            name = description.split(maxsplit=1)[0] if description.strip() else ""
            if not name:
                raise ValueError(f"{path}:{line_no}: header without a record name")
            record, record_has_sequence = FastaRecord(name, description, line_no), False
            yield record
            position, line_no = end + 1, line_no + 1
    if carry:  # last line without a newline
        if carry.startswith(b">"):
            raise ValueError(f"{path}:{line_no}: file ends inside a header line")
        chunk, _ = sequence_chunk(carry, line_no)
        if chunk:
            yield chunk
    if record is None:
        raise ValueError(f"{path}: no '>' header found: not a FASTA file, or empty")
    if empty := ended_empty():
        yield empty


def _next_header(data, start):
    """Position of the next '>' that starts a line in `data` (whole lines, from a line start), or len(data).
    A '>' inside a line is not a header: the sequence check reports it as an invalid character."""
    position = data.find(b">", start)
    while position > start and data[position - 1] != 0x0A:
        position = data.find(b">", position + 1)
    return len(data) if position < 0 else position


def read_fasta(path):
    """Stream `(name, sequence)` records of a FASTA file (`.fa`, `.fa.gz`, bgzip). `name` is the header's first
    word; the sequence is returned as in the file (case kept, line ends removed)."""
    name, chunks = None, []
    for item in scan_fasta(path):
        if isinstance(item, EmptyRecord):  # reported to the reader of this convenience stream as a warning
            warnings.warn(item.message, stacklevel=2)
            continue
        if isinstance(item, FastaRecord):
            if name is not None:
                yield name, b"".join(chunks).decode("ascii")
            name, chunks = item.name, []
        else:
            chunks.append(item)
    if name is not None:
        yield name, b"".join(chunks).decode("ascii")
