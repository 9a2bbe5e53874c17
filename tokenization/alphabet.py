"""The nucleotide alphabet: the one table of token ids that every tokenizer, the byte encoder and the reverse
complement derive from.

    ids 0-4   [PAD] [UNK] [CLS] [SEP] [MASK]
    ids 5-9   A C G T N
    ids 10-15 [RESERVED_0] ... [RESERVED_5]   (vocabulary padded to a multiple of 8, inside the embedding)

Normalisation (the same in the HF tokenizer and the byte encoder): lowercase (soft-masked repeats) folds to upper
case, IUPAC ambiguity codes R Y S W K M B D H V map to N, ASCII whitespace is removed, any other character is
[UNK]. The genome store alone keeps the case, as a repeat bit beside the id (REPEAT_BIT).
"""

import numpy as np

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = SPECIAL_TOKENS
NUCLEOTIDES = "ACGTN"
BASES = NUCLEOTIDES[:4]  # the column order of every per-base (..., 4) array: A C G T
IUPAC_AMBIGUITY = "RYSWKMBDHV"
WHITESPACE = " \t\n\r\f\v"  # ASCII only: the HF normaliser and the byte encoder must agree exactly
VOCAB_MULTIPLE = 8


def pad_vocabulary(tokens, multiple=VOCAB_MULTIPLE):
    """Append [RESERVED_i] tokens until the vocabulary size is a multiple of `multiple` (kept inside vocab_size)."""
    tokens = list(tokens)
    reserved = (-len(tokens)) % multiple
    return tokens + [f"[RESERVED_{i}]" for i in range(reserved)]


VOCABULARY = tuple(pad_vocabulary(list(SPECIAL_TOKENS) + list(NUCLEOTIDES)))
TOKEN_TO_ID = {token: i for i, token in enumerate(VOCABULARY)}
VOCAB_SIZE = len(VOCABULARY)
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = (TOKEN_TO_ID[t] for t in SPECIAL_TOKENS)
A_ID, C_ID, G_ID, T_ID, N_ID = (TOKEN_TO_ID[b] for b in NUCLEOTIDES)
NUCLEOTIDE_IDS = (A_ID, C_ID, G_ID, T_ID)
SPECIAL_IDS = (PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID)

def _byte_table():
    table = np.full(256, UNK_ID, dtype=np.uint8)
    for base in NUCLEOTIDES:
        table[ord(base)] = table[ord(base.lower())] = TOKEN_TO_ID[base]
    for code in IUPAC_AMBIGUITY:
        table[ord(code)] = table[ord(code.lower())] = N_ID
    return table


BYTE_TO_ID = _byte_table()  # whitespace is deleted before lookup, so its entries are never used

# The genome store keeps the soft-mask (lower case: repeats, in UCSC/Ensembl FASTA) in the top bit of each token
# byte: every id is below 16, so one byte still holds a base, and the store does not grow.
REPEAT_BIT = 0x80
TOKEN_BITS = 0x7F
assert VOCAB_SIZE <= TOKEN_BITS


def _soft_masked_byte_table():
    table = BYTE_TO_ID.copy()
    lower = np.frombuffer((NUCLEOTIDES + IUPAC_AMBIGUITY).lower().encode(), dtype=np.uint8)
    table[lower] |= REPEAT_BIT
    return table


BYTE_TO_STORED = _soft_masked_byte_table()  # BYTE_TO_ID with the repeat bit set on lower-case letters

# Complement of every id: A<->T, C<->G, N<->N; specials and reserved ids map to themselves.
COMPLEMENT_ID = np.arange(VOCAB_SIZE, dtype=np.uint8)
COMPLEMENT_ID[[A_ID, C_ID, G_ID, T_ID]] = [T_ID, G_ID, C_ID, A_ID]

# Complement of IUPAC letters, case kept: pairs are an involution, so reverse-complementing twice is the identity.
_COMPLEMENT_PAIRS = "AT CG RY KM BV DH SS WW NN"
_upper_from = "".join(pair[0] + pair[1] for pair in _COMPLEMENT_PAIRS.split())
_upper_to = "".join(pair[1] + pair[0] for pair in _COMPLEMENT_PAIRS.split())
COMPLEMENT_CHARS = str.maketrans(_upper_from + _upper_from.lower(), _upper_to + _upper_to.lower())

# Bytes that may appear in a FASTA sequence line: nucleotides and IUPAC codes, either case.
FASTA_SEQUENCE_BYTES = (NUCLEOTIDES + IUPAC_AMBIGUITY).encode()
FASTA_SEQUENCE_BYTES += FASTA_SEQUENCE_BYTES.lower()
