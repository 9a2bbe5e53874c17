"""Read access to a prepared genome store (see prepare_genome): a read-only uint8 memmap plus its index."""

import os

import numpy as np

from . import alphabet
from .prepare_genome import INDEX_FILE, TOKENS_FILE, load_index, sources_checksum


class GenomeStore:
    """`store.records` (dicts: name, source, offset, length, n_count) and `store.record_tokens(i)` (a memmap view)."""

    def __init__(self, directory):
        self.directory = directory
        index = load_index(directory)
        if index is None:
            raise ValueError(f"{directory}: no {INDEX_FILE}; run `nucel prepare-genome` first")
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

    def record_tokens(self, record_id):
        record = self.records[record_id]
        return self.tokens[record["offset"]:record["offset"] + record["length"]]
