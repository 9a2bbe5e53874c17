"""The nucleotide alphabet, tokenizers, byte encoder and FASTA reading."""

from .alphabet import VOCAB_SIZE, VOCABULARY
from .encoding import encode_sequence, reverse_complement
from .fasta import read_fasta
from .hf_tokenizers import load_tokenizer, save_tokenizer

__all__ = ["VOCABULARY", "VOCAB_SIZE", "encode_sequence", "load_tokenizer", "read_fasta", "reverse_complement",
           "save_tokenizer"]
