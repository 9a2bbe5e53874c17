"""The token ids of the authors' released NucEL model (`FreakingPotato/NucEL`), and a plain tokenizer that gives them.

The release's tokenizer (`NucEL_Tokenizer` with k=1, from the authors' training code; custom code this package
never runs) builds its dictionary as

    [PAD] [UNK] [CLS] [SEP] [MASK] [BOS] [EOS]   ids 0-6
    A C G T                                      ids 7-10, then again as the k=1 "k-mers": A=11 C=12 G=13 T=14
    [RESERVED_0] ... [RESERVED_15]               ids 15-30

The second A C G T overwrite the first, so ids 7-10 are never produced, and the dictionary holds 27 entries: the
embedding's 27 rows (ids 27-30 lie outside it; text never yields them). It upper-cases its input, prepends [CLS]
and never appends [SEP]; N, IUPAC codes and any other character become [UNK] (1).

`release_tokenizer` reproduces that id table as a `PreTrainedTokenizerFast` (a `tokenizer.json`, no remote code):
the same ids for every base, N, IUPAC code and special token, `[CLS] bases` with no [SEP] as the model was trained.
Only whitespace differs: it is removed here, as in this package's own tokenizer (the release's handling of it is
not documented). Ids the model never saw get names of their own: [UNUSED_7] ... [UNUSED_10], and the reserved
tokens that fit the embedding keep theirs.
"""

import json

from . import alphabet
from .hf_tokenizers import nucleotide_tokenizer

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[BOS]", "[EOS]")
BASE_IDS = {"A": 11, "C": 12, "G": 13, "T": 14}
RESERVED = 16
VOCAB_SIZE = 27  # the release's embedding rows: the dictionary's entries after the overwrite


def release_vocabulary():
    """token -> id exactly as the release's tokenizer builds it (the overwrite included)."""
    vocabulary = {token: i for i, token in enumerate(SPECIALS)}
    next_id = len(vocabulary)
    for base in "ACGT":  # the alphabet, then the k=1 k-mers: the same four strings, overwritten
        vocabulary[base] = next_id
        next_id += 1
    for base in "ACGT":
        vocabulary[base] = next_id
        next_id += 1
    for i in range(RESERVED):
        vocabulary[f"[RESERVED_{i}]"] = next_id
        next_id += 1
    return vocabulary


def read_release_vocabulary(path):
    """The authors' `vocab.json` (token -> id), checked to hold this package's five specials and A C G T."""
    try:
        with open(path, encoding="utf-8") as handle:
            vocabulary = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as failure:
        raise ValueError(f"{path}: not a readable vocab.json ({failure})") from None
    if not isinstance(vocabulary, dict) or not all(isinstance(i, int) and i >= 0 for i in vocabulary.values()):
        raise ValueError(f"{path}: expected a JSON object of token -> non-negative integer id")
    missing = [token for token in (*alphabet.SPECIAL_TOKENS, *"ACGT") if token not in vocabulary]
    if missing:
        raise ValueError(f"{path}: no id for {', '.join(missing)}; expected the NucEL release's vocabulary")
    used = [vocabulary[token] for token in (*alphabet.SPECIAL_TOKENS, *"ACGT")]
    if len(set(used)) != len(used):
        raise ValueError(f"{path}: specials and A C G T share ids ({used})")
    return vocabulary


def vocabulary_in_id_order(vocabulary, vocab_size):
    """(tokens indexed by id for ids < vocab_size, tokens left out because their id is past the embedding).
    Ids no token holds (the release's 7-10) are named [UNUSED_<id>], so every row of the embedding has a token."""
    tokens = [f"[UNUSED_{i}]" for i in range(vocab_size)]
    outside = []
    for token, token_id in sorted(vocabulary.items(), key=lambda item: item[1]):
        if token_id < vocab_size:
            tokens[token_id] = token
        else:
            outside.append(token)
    return tokens, outside


def release_tokenizer(vocabulary, vocab_size, model_max_length):
    """A `PreTrainedTokenizerFast` giving the release's ids: `[CLS] bases`, no [SEP]; N and IUPAC -> [UNK]."""
    tokens, outside = vocabulary_in_id_order(vocabulary, vocab_size)
    for token in (*alphabet.SPECIAL_TOKENS, *"ACGT"):
        if vocabulary[token] >= vocab_size:
            raise ValueError(f"vocabulary: {token} has id {vocabulary[token]}, outside the model's {vocab_size}-row "
                             "embedding")
    if "N" in vocabulary:
        raise ValueError(f"vocabulary: N has its own id {vocabulary['N']}; the release reads N as [UNK], so this "
                         "is not its vocabulary")
    return nucleotide_tokenizer(tokens, model_max_length, append_sep=False), outside
