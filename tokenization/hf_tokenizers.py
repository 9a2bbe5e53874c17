"""Hugging Face tokenizers built from the alphabet: nucleotide (single-nt) and k-mer (overlapping or not)."""

import contextlib
import itertools
import json
import os
import re
import shutil
import tempfile

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import AutoTokenizer, PreTrainedTokenizerFast
from transformers.utils import cached_file

from nucel.files import read_json_object

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


def _build(vocabulary, split_pattern, model_max_length, append_sep=True):
    """A WordLevel tokenizer over `vocabulary` (tokens in id order) with `[CLS] ... [SEP]` templates (`[CLS] ...`
    for a model trained without [SEP]), wrapped for transformers."""
    ids = {token: i for i, token in enumerate(vocabulary)}
    tokenizer = Tokenizer(models.WordLevel(vocab=ids, unk_token=alphabet.UNK))
    tokenizer.normalizer = _normaliser()
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(split_pattern), behavior="isolated")
    cls, sep = alphabet.CLS, alphabet.SEP
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}" if append_sep else f"{cls} $A",
        pair=f"{cls} $A {sep} $B:1 {sep}:1" if append_sep else f"{cls} $A {sep} $B:1",
        special_tokens=[(cls, ids[cls]), (sep, ids[sep])])
    tokenizer.decoder = decoders.Fuse()  # tokens concatenate back into the sequence, no spaces
    extra = {name: token for name, token in (("bos_token", "[BOS]"), ("eos_token", "[EOS]")) if token in ids}
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=alphabet.PAD, unk_token=alphabet.UNK, cls_token=cls,
        sep_token=sep, mask_token=alphabet.MASK, model_input_names=["input_ids", "attention_mask"],
        model_max_length=model_max_length, clean_up_tokenization_spaces=False, **extra)


def nucleotide_tokenizer(vocabulary, model_max_length=DEFAULT_MAX_LENGTH, append_sep=True):
    """One token per base over `vocabulary` (tokens in id order, holding [PAD] [UNK] [CLS] [SEP] [MASK] and A C G
    T): lower case folded to upper, IUPAC codes to N, whitespace removed, anything not in it -> [UNK]."""
    return _build(vocabulary, ".", model_max_length, append_sep)


def load_tokenizer(kind="nucleotide", k=6, stride=None, model_max_length=DEFAULT_MAX_LENGTH):
    """Build a tokenizer.

    kind="nucleotide": one token per base, ids from `tokenization.alphabet` (16-token vocabulary).
    kind="kmer", stride=1: overlapping k-mers (DNABERT / RandomMask), 4**k + 5 tokens; remote code when saved.
    kind="kmer", stride=k: non-overlapping k-mers (Nucleotide Transformer) with single-nucleotide fallback for the
        tail and around N; a plain `tokenizer.json`.
    """
    if kind == "nucleotide":
        return nucleotide_tokenizer(alphabet.VOCABULARY, model_max_length)
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


# The one tokenizer class this package ships as remote code; folders that name it get this package's own class.
PACKAGE_TOKENIZERS = {"tokenization_kmer.OverlappingKmerTokenizer": OverlappingKmerTokenizer}


def saved_tokenizer_config(location):
    """`tokenizer_config.json` of a folder or (cached) Hub id as a dict; {} where there is none."""
    try:
        path = (os.path.join(location, "tokenizer_config.json") if os.path.isdir(location)
                else cached_file(location, "tokenizer_config.json", _raise_exceptions_for_missing_entries=False))
    except OSError:
        return {}
    if not path or not os.path.isfile(path):
        return {}
    return read_json_object(path, "tokenizer config")


# What a NucEL tokenizer's tokenizer_config.json holds (nucleotide and k-mer tokenizers, transformers 4.x and 5.x):
# a saved config is rebuilt from these keys, so nothing a source folder added (a hub_token, a home path, an
# auto_map into another repository) is written out again.
TOKENIZER_CONFIG_KEYS = frozenset({
    "added_tokens_decoder", "auto_map", "backend", "clean_up_tokenization_spaces", "model_input_names",
    "model_max_length", "tokenizer_class", "k", "padding_side", "truncation_side", "extra_special_tokens",
    "additional_special_tokens", "pad_token", "unk_token", "cls_token", "sep_token", "mask_token", "bos_token",
    "eos_token"})
KMER_AUTO_MAP = {"AutoTokenizer": ["tokenization_kmer.OverlappingKmerTokenizer", None]}
# Keys that may hold credentials, and the one that makes pipeline() fetch code: never written, whatever the tokenizer.
SECRET_OR_CODE_KEYS = re.compile(r"^token$|hub_token|auth_token|access_token|api_key|secret|password|credential|"
                                 r"^custom_pipelines$", re.IGNORECASE)


NUCEL_TOKENIZER_CLASSES = ("PreTrainedTokenizerFast", "TokenizersBackend", "OverlappingKmerTokenizer")


def keys_to_leave_out(config, nucel=None):
    """The keys of a tokenizer_config.json that are neither read nor written: for a NucEL tokenizer (`nucel`;
    default: as its `tokenizer_class` says) every key it does not define, for another any credential or code
    reference. transformers 5.x reads any `*_token` key as a special token, so a `hub_token` would otherwise
    become a token of the vocabulary (and be saved into tokenizer.json)."""
    nucel = config.get("tokenizer_class") in NUCEL_TOKENIZER_CLASSES if nucel is None else nucel
    return sorted(key for key in config if SECRET_OR_CODE_KEYS.search(key)
                  or (nucel and key not in TOKENIZER_CONFIG_KEYS))


@contextlib.contextmanager
def without_extra_keys(location, config):
    """`location`, or a temporary copy of its tokenizer files whose config leaves out `keys_to_leave_out`."""
    extra = keys_to_leave_out(config)
    if not extra or not os.path.isdir(location):
        yield location
        return
    with tempfile.TemporaryDirectory(prefix="nucel-tokenizer-") as copy:
        for name in os.listdir(location):
            path = os.path.join(location, name)
            if os.path.isfile(path) and (name.startswith(("tokenizer", "special_tokens", "added_tokens", "vocab"))):
                shutil.copyfile(path, os.path.join(copy, name))
        with open(os.path.join(copy, "tokenizer_config.json"), "w", encoding="utf-8") as handle:
            json.dump({key: value for key, value in config.items() if key not in extra}, handle)
        yield copy


def load_saved_tokenizer(location, trust_remote_code=False):
    """The tokenizer saved with a model (a folder or Hub id), with no code from that folder run.

    A plain `tokenizer.json` loads through transformers' own classes (trust_remote_code=False); a folder whose
    `auto_map` names this package's overlapping k-mer tokenizer gets this package's class. Any other tokenizer
    code is refused (the nucleotide tokenizer needs none) unless the caller passes `trust_remote_code=True` for a
    non-NucEL model the user chose to trust. A clear ValueError if nothing loads."""
    config = saved_tokenizer_config(location)
    auto_map = config.get("auto_map") or {}
    references = auto_map.get("AutoTokenizer", auto_map) if isinstance(auto_map, dict) else auto_map
    references = [ref for ref in (references if isinstance(references, (list, tuple)) else [references]) if ref]
    try:
        if references:
            known = [PACKAGE_TOKENIZERS[ref.split("--")[-1]] for ref in references
                     if ref.split("--")[-1] in PACKAGE_TOKENIZERS]
            if not known and trust_remote_code:
                return AutoTokenizer.from_pretrained(location, trust_remote_code=True)
            if not known:
                raise ValueError(f"--model {location}: its tokenizer needs custom code ({', '.join(references)}); "
                                 "NucEL runs no code from model folders (its own tokenizers need none) unless you pass "
                                 "--trust-remote-code")
            with without_extra_keys(location, config) as readable:
                return known[0].from_pretrained(readable)
        with without_extra_keys(location, config) as readable:
            return AutoTokenizer.from_pretrained(readable, trust_remote_code=False)
    except (OSError, ValueError) as failure:
        message = str(failure).strip().splitlines()[0] if str(failure).strip() else type(failure).__name__
        if message.startswith(f"--model {location}"):
            raise
        raise ValueError(f"--model {location}: no loadable tokenizer ({message})") from None


def save_tokenizer(tokenizer, save_directory):
    """`save_pretrained` that stays loadable by transformers 4.x and says nothing about this machine: a fast
    tokenizer is named `PreTrainedTokenizerFast` (5.x writes `TokenizersBackend`, which 4.x cannot load), and its
    config is rebuilt from TOKENIZER_CONFIG_KEYS (the loading flags an offline re-save records, `local_files_only`
    and `is_local`, and anything its source folder added are left out). Another model's tokenizer keeps its own
    keys less credentials and code references. Returns the keys left out."""
    tokenizer.save_pretrained(save_directory)
    path = os.path.join(save_directory, "tokenizer_config.json")
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    nucel = type(tokenizer).__name__ in NUCEL_TOKENIZER_CLASSES
    dropped = keys_to_leave_out(config, nucel)
    for key in dropped:
        config.pop(key)
    if nucel and config.get("auto_map", KMER_AUTO_MAP) != KMER_AUTO_MAP:
        config.pop("auto_map")
        dropped.append("auto_map")
    if isinstance(tokenizer, PreTrainedTokenizerFast):
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        config["model_input_names"] = ["input_ids", "attention_mask"]
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2, sort_keys=True)
    return [key for key in dropped if key not in ("local_files_only", "is_local")]
