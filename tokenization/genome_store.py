"""Read access to a prepared genome store (see prepare_genome): a read-only uint8 memmap plus its index.

Each byte is a token id with alphabet.REPEAT_BIT set on soft-masked (lower-case) bases: `record_tokens` gives the
ids, `record_repeats` the soft-mask, `record_bytes` the stored bytes as they are.
"""

import os

import numpy as np

from . import alphabet
from .prepare_genome import FORMAT_VERSION, INDEX_FILE, TOKENS_FILE, build_lock, load_index, sources_checksum


class GenomeStore:
    """`store.records` (dicts: name, source, offset, length, n_count, repeat_count) and the bases of record `i`:
    `store.record_tokens(i, start, end)` (token ids), `store.record_repeats(i, start, end)` (soft-mask)."""

    def __init__(self, directory):
        self.directory = directory
        lock = build_lock(directory)
        builder = lock.held_elsewhere()
        if builder is not None:  # never read a store while it is written (another process, or another node)
            lock.refuse(builder)
        index = load_index(directory)
        if index is None:
            raise ValueError(f"{directory}: no {INDEX_FILE}; run `nucel prepare-genome` first (on several machines: "
                             "on a path every machine sees, or on each machine)")
        if index.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{os.path.join(directory, INDEX_FILE)}: genome store format "
                             f"{index.get('format_version')}, this NucEL reads format {FORMAT_VERSION} (which keeps "
                             "soft-masked repeats); prepare it again: `nucel prepare-genome FASTA... --output-dir "
                             f"{directory}` (pretraining with --fasta rebuilds it itself)")
        if index.get("vocabulary") != list(alphabet.VOCABULARY):
            raise ValueError(f"{os.path.join(directory, INDEX_FILE)}: vocabulary differs from tokenization.alphabet; "
                             "prepare the store again")
        tokens_path = os.path.join(directory, TOKENS_FILE)
        if not os.path.exists(tokens_path) or os.path.getsize(tokens_path) != index["total_length"]:
            raise ValueError(f"{tokens_path}: missing or not {index['total_length']} bytes; prepare the store again")
        self.index = index
        self.records = index["records"]
        self.tokens = np.memmap(tokens_path, dtype=np.uint8, mode="r")

    @property
    def total_length(self):
        return self.index["total_length"]

    @property
    def checksum(self):
        """Identifies the store's content (the sources' SHA-256 in order)."""
        return sources_checksum(self.index["sources"])

    def record_bytes(self, record_id):
        """The record's stored bytes (a memmap view: token id | REPEAT_BIT)."""
        record = self.records[record_id]
        return self.tokens[record["offset"]:record["offset"] + record["length"]]

    def record_bases(self, record_id, start=0, end=None):
        """(token ids, soft-mask) of bases [start, end) of the record, from one read (copies)."""
        stored = np.asarray(self.record_bytes(record_id)[start:end])
        return stored & alphabet.TOKEN_BITS, (stored & alphabet.REPEAT_BIT).astype(bool)

    def record_tokens(self, record_id, start=0, end=None):
        """Token ids of bases [start, end) of the record (a copy)."""
        return np.asarray(self.record_bytes(record_id)[start:end]) & alphabet.TOKEN_BITS

    def record_repeats(self, record_id, start=0, end=None):
        """True where bases [start, end) of the record are soft-masked (lower case in the FASTA)."""
        return self.record_bases(record_id, start, end)[1]
