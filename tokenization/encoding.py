"""Genome-speed encoding and reverse complement over the alphabet's id table."""

import re

import numpy as np

from .alphabet import (
    BYTE_TO_ID,
    COMPLEMENT_CHARS,
    COMPLEMENT_ID,
    NUCLEOTIDES,
    SPECIAL_TOKENS,
    TOKEN_TO_ID,
    WHITESPACE,
)

_ENCODE_TABLE = BYTE_TO_ID.tobytes()
_WHITESPACE_BYTES = WHITESPACE.encode()
# id -> one letter: A C G T N for the nucleotides, '?' for anything else (specials never sit in a sequence).
_DECODE_TABLE = bytes(ord(NUCLEOTIDES[i - TOKEN_TO_ID['A']]) if 0 <= i - TOKEN_TO_ID['A'] < len(NUCLEOTIDES)
                      else ord('?') for i in range(256))
# Special tokens written in the text ("AC[MASK]GT") are those tokens, exactly as the HF tokenizer reads them.
_SPECIAL = re.compile(b"(" + b"|".join(re.escape(token.encode()) for token in SPECIAL_TOKENS) + b")")
_SPECIAL_IDS = {token.encode(): bytes([TOKEN_TO_ID[token]]) for token in SPECIAL_TOKENS}


def encode_sequence(sequence):
    """str | bytes -> uint8 ids, exactly the nucleotide tokenizer's ids without [CLS]/[SEP].

    One C-level `bytes.translate` pass maps every byte through a 256-entry table and deletes whitespace.
    A non-ASCII character of a str becomes one [UNK], as in the HF tokenizer; raw bytes map byte by byte.
    The special tokens written out (`[PAD] [UNK] [CLS] [SEP] [MASK]`, exact case) become those tokens, as in the
    HF tokenizer, so `AC[MASK]GT` is four bases and a mask in both; FASTA text never holds `[`.
    """
    if isinstance(sequence, str):
        sequence = sequence.encode("ascii", errors="replace")  # one '?' (-> [UNK]) per non-ASCII character
    elif not isinstance(sequence, (bytes, bytearray, memoryview)):
        raise TypeError(f"encode_sequence: expected str or bytes, got {type(sequence).__name__}")
    sequence = bytes(sequence)
    if b"[" not in sequence:
        return np.frombuffer(bytearray(_translate(sequence)), dtype=np.uint8)
    pieces = _SPECIAL.split(sequence)  # text, special, text, special, ...
    encoded = b"".join(_SPECIAL_IDS[piece] if index % 2 else _translate(piece)
                       for index, piece in enumerate(pieces))
    return np.frombuffer(bytearray(encoded), dtype=np.uint8)


def decode_bases(ids):
    """uint8 ids -> the sequence as text, one letter per id (the inverse of encode_sequence on A/C/G/T/N)."""
    return np.asarray(ids, dtype=np.uint8).tobytes().translate(_DECODE_TABLE).decode("ascii")


def _translate(raw):
    """bytes -> bytes of token ids, whitespace deleted (FASTA files are encoded while parsed: fasta.scan_fasta)."""
    return raw.translate(_ENCODE_TABLE, _WHITESPACE_BYTES)


def reverse_complement(sequence):
    """Reverse complement of a str (IUPAC-aware, case kept) or of an id array (A<->T, C<->G, N<->N)."""
    if isinstance(sequence, str):
        return sequence.translate(COMPLEMENT_CHARS)[::-1]
    if isinstance(sequence, (bytes, bytearray)):
        return reverse_complement(sequence.decode("ascii")).encode("ascii")
    ids = np.asarray(sequence)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"reverse_complement: expected str or an integer id array, got dtype {ids.dtype}")
    return COMPLEMENT_ID[ids[..., ::-1]].astype(ids.dtype, copy=False)
