"""Hugging Face tokenizers built from the alphabet: nucleotide (single-nt) and k-mer (overlapping or not)."""

import itertools
import json
import os

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from . import alphabet
from .tokenization_kmer import OverlappingKmerTokenizer

DEFAULT_MAX_LENGTH = 2048  # NucELConfig.max_position_embeddings


def _normaliser():
    """Whitespace removed, IUPAC codes -> N, lowercase -> upper case (there is no Uppercase normaliser)."""
    iupac = alphabet.IUPAC_AMBIGUITY + alphabet.IUPAC_AMBIGUITY.lower() + "n"
    steps = [normalizers.Replace(Regex("[" + "".join(f"\\x{ord(c):02x}" for c in alphabet.WHITESPACE) + "]"), ""),
             normalizers.Replace(Regex(f"[{iupac}]"), "N")]
    steps += [normalizers.Replace(base.lower(), base) for base in "ACGT"]
    return normalizers.Sequence(steps)


def _build(vocabulary, split_pattern, model_max_length):
    """A WordLevel tokenizer over `vocabulary` with `[CLS] ... [SEP]` templates, wrapped for transformers."""
    tokenizer = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(vocabulary)}, unk_token=alphabet.UNK))
    tokenizer.normalizer = _normaliser()
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(split_pattern), behavior="isolated")
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{alphabet.CLS} $A {alphabet.SEP}", pair=f"{alphabet.CLS} $A {alphabet.SEP} $B:1 {alphabet.SEP}:1",
        special_tokens=[(alphabet.CLS, alphabet.CLS_ID), (alphabet.SEP, alphabet.SEP_ID)])
    tokenizer.decoder = decoders.Fuse()  # tokens concatenate back into the sequence, no spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=alphabet.PAD, unk_token=alphabet.UNK, cls_token=alphabet.CLS,
        sep_token=alphabet.SEP, mask_token=alphabet.MASK, model_input_names=["input_ids", "attention_mask"],
        model_max_length=model_max_length, clean_up_tokenization_spaces=False)


def load_tokenizer(kind="nucleotide", k=6, stride=None, model_max_length=DEFAULT_MAX_LENGTH):
    """Build a tokenizer.

    kind="nucleotide": one token per base, ids from `tokenization.alphabet` (16-token vocabulary).
    kind="kmer", stride=1: overlapping k-mers (DNABERT / RandomMask), 4**k + 5 tokens; remote code when saved.
    kind="kmer", stride=k: non-overlapping k-mers (Nucleotide Transformer) with single-nucleotide fallback for the
        tail and around N; a plain `tokenizer.json`.
    """
    if kind == "nucleotide":
        return _build(alphabet.VOCABULARY, ".", model_max_length)
    if kind != "kmer":
        raise ValueError(f"load_tokenizer: kind={kind!r}: expected 'nucleotide' or 'kmer'")
    if not isinstance(k, int) or not 1 <= k <= 8:
        raise ValueError(f"load_tokenizer: k={k!r}: expected an integer in 1..8")
    stride = 1 if stride is None else stride
    if stride == 1:
        return OverlappingKmerTokenizer(k=k, model_max_length=model_max_length)
    if stride != k:
        raise ValueError(f"load_tokenizer: stride={stride!r}: expected 1 (overlapping) or k={k} (non-overlapping)")
    kmers = ["".join(p) for p in itertools.product("ACGT", repeat=k)]
    vocabulary = alphabet.pad_vocabulary(list(alphabet.SPECIAL_TOKENS) + list(alphabet.NUCLEOTIDES) + kmers)
    return _build(vocabulary, f"[ACGT]{{{k}}}|.", model_max_length)


def load_saved_tokenizer(location):
    """The tokenizer saved with a model (a folder or Hub id, remote code allowed); a clear ValueError if none loads."""
    try:
        return AutoTokenizer.from_pretrained(location, trust_remote_code=True)
    except (OSError, ValueError) as failure:
        raise ValueError(f"--model {location}: no loadable tokenizer ({str(failure).splitlines()[0]})") from None


def save_tokenizer(tokenizer, save_directory):
    """`save_pretrained` that stays loadable by transformers 4.x: a fast tokenizer is named
    `PreTrainedTokenizerFast` (5.x writes `TokenizersBackend`, which 4.x cannot load)."""
    tokenizer.save_pretrained(save_directory)
    if isinstance(tokenizer, PreTrainedTokenizerFast):
        path = os.path.join(save_directory, "tokenizer_config.json")
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        config["model_input_names"] = ["input_ids", "attention_mask"]
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=2, sort_keys=True)
    return save_directory
