"""Overlapping k-mer tokenizer (DNABERT / RandomMask style): one token per position, `len - k + 1` tokens.

`tokenizer.json` cannot express overlapping splits, so this class is saved beside the tokenizer files and loaded as
remote code (`AutoTokenizer.from_pretrained(folder, trust_remote_code=True)`). It imports only the standard
library and transformers.
"""

import itertools
import json
import os
import shutil

from transformers import PreTrainedTokenizer

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0-4, as tokenization/alphabet.py
_WHITESPACE = str.maketrans("", "", " \t\n\r\f\v")
_NORMALISE = str.maketrans("acgtnryswkmbdhvRYSWKMBDHV", "ACGTNNNNNNNNNNNNNNNNNNNNN")
VOCAB_FILE = "vocab.txt"


def kmer_vocabulary(k):
    """Specials then every ACGT k-mer in lexicographic order: 4**k + 5 tokens (4,101 for k=6), DNABERT's order."""
    return list(SPECIAL_TOKENS) + ["".join(p) for p in itertools.product("ACGT", repeat=k)]


class OverlappingKmerTokenizer(PreTrainedTokenizer):
    """Every window of k nucleotides, stride 1. A k-mer containing N or any non-ACGT character is [UNK]."""

    vocab_files_names = {"vocab_file": VOCAB_FILE}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file=None, k=6, **kwargs):
        if not isinstance(k, int) or not 1 <= k <= 8:
            raise ValueError(f"OverlappingKmerTokenizer: k={k!r}: expected an integer in 1..8")
        self.k = k
        if vocab_file is not None:
            with open(vocab_file, encoding="utf-8") as handle:
                tokens = [line.rstrip("\n") for line in handle if line.strip()]
            if tokens != kmer_vocabulary(k):
                raise ValueError(f"{vocab_file}: expected the {4 ** k + 5}-token vocabulary of k={k}")
        self.vocab = {token: i for i, token in enumerate(kmer_vocabulary(k))}
        self.ids_to_tokens = {i: token for token, i in self.vocab.items()}
        for name, token in zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"), SPECIAL_TOKENS):
            kwargs.setdefault(name, token)
        super().__init__(**kwargs)

    @property
    def vocab_size(self):
        return len(self.vocab)

    def get_vocab(self):
        return dict(self.vocab)

    def normalize(self, text):
        """Whitespace removed, upper case, IUPAC ambiguity codes -> N (the nucleotide tokenizer's rules)."""
        return text.translate(_WHITESPACE).translate(_NORMALISE)

    def _tokenize(self, text, **kwargs):
        sequence = self.normalize(text)
        if 0 < len(sequence) < self.k:
            raise ValueError(f"OverlappingKmerTokenizer: sequence of {len(sequence)} nt is shorter than k={self.k}")
        return [sequence[i:i + self.k] for i in range(len(sequence) - self.k + 1)]

    def _convert_token_to_id(self, token):
        return self.vocab.get(token, self.vocab["[UNK]"])

    def _convert_id_to_token(self, index):
        return self.ids_to_tokens.get(index, "[UNK]")

    def convert_tokens_to_string(self, tokens):
        """Overlapping k-mers back to the sequence. [CLS]/[SEP]/[PAD] are dropped; [UNK] and [MASK] hold their
        position, and a position covered only by such tokens decodes as N."""
        kmers = [t for t in tokens if t not in ("[CLS]", "[SEP]", "[PAD]")]
        if not kmers:
            return ""
        sequence = ["N"] * (len(kmers) + self.k - 1)
        for start, kmer in enumerate(kmers):
            if kmer not in SPECIAL_TOKENS:
                sequence[start:start + self.k] = kmer
        return "".join(sequence)

    def _decode(self, token_ids, skip_special_tokens=False, **kwargs):
        # Always the sequence: skipping [UNK]/[MASK] (transformers' skip_special_tokens) would shift every k-mer
        # after them, so position-holding tokens are kept whatever skip_special_tokens says.
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        return self.convert_tokens_to_string(self.convert_ids_to_tokens(list(token_ids)))

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        if token_ids_1 is None:
            return cls + token_ids_0 + sep
        return cls + token_ids_0 + sep + token_ids_1 + sep

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False):
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)
        if token_ids_1 is None:
            return [1] + [0] * len(token_ids_0) + [1]
        return [1] + [0] * len(token_ids_0) + [1] + [0] * len(token_ids_1) + [1]

    def save_vocabulary(self, save_directory, filename_prefix=None):
        path = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + VOCAB_FILE)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(kmer_vocabulary(self.k)) + "\n")
        return (path,)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Also copy this file beside the vocabulary and point AutoTokenizer at it (remote code)."""
        saved = super().save_pretrained(save_directory, *args, **kwargs)
        shutil.copyfile(os.path.abspath(__file__), os.path.join(save_directory, "tokenization_kmer.py"))
        config_path = os.path.join(save_directory, "tokenizer_config.json")
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
        config.update(tokenizer_class="OverlappingKmerTokenizer", k=self.k,
                      auto_map={"AutoTokenizer": ["tokenization_kmer.OverlappingKmerTokenizer", None]})
        with open(config_path, "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=2, sort_keys=True)
        return saved
