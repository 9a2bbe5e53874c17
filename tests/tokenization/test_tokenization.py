"""Tokenizers, byte encoder and reverse complement agree with each other and with the alphabet."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nucel.modeling_nucel import NucELConfig
from nucel.tokenization import alphabet, encode_sequence, load_tokenizer, reverse_complement, save_tokenizer

DNA_CHARS = "ACGTNacgtn" + alphabet.IUPAC_AMBIGUITY + alphabet.IUPAC_AMBIGUITY.lower()
dna = st.text(alphabet=st.sampled_from(DNA_CHARS + " \n\t"), min_size=0, max_size=300)
# Anything else a file might hold: digits, punctuation, U, non-ASCII (but no literal "[" that could spell a token).
noisy = st.text(alphabet=st.sampled_from(DNA_CHARS + " \n\t0123456789-*.Uuxé√"), max_size=200)
many = settings(max_examples=1000, deadline=None)

NUCLEOTIDE = load_tokenizer("nucleotide")
OVERLAPPING = load_tokenizer("kmer", k=6, stride=1)


def normalised(text):
    """The documented rules: whitespace removed, upper case, IUPAC codes -> N."""
    text = "".join(ch for ch in text if ch not in alphabet.WHITESPACE).upper()
    return "".join("N" if ch in alphabet.IUPAC_AMBIGUITY else ch for ch in text)


def test_vocabulary_layout_and_model_defaults():
    assert alphabet.VOCABULARY[:10] == ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "A", "C", "G", "T", "N")
    assert alphabet.VOCAB_SIZE == 16 and len(NUCLEOTIDE) == 16
    config = NucELConfig()  # the remote-code config restates the ids; they must not drift apart
    assert config.vocab_size == alphabet.VOCAB_SIZE
    assert (config.pad_token_id, config.unk_token_id, config.cls_token_id, config.sep_token_id,
            config.mask_token_id) == alphabet.SPECIAL_IDS
    assert tuple(config.nucleotide_token_ids) == alphabet.NUCLEOTIDE_IDS
    assert NUCLEOTIDE.get_vocab() == alphabet.TOKEN_TO_ID


@many
@given(noisy)
def test_hf_tokenizer_ids_equal_byte_encoder_ids(text):
    ids = NUCLEOTIDE(text)["input_ids"]
    assert ids[0] == alphabet.CLS_ID and ids[-1] == alphabet.SEP_ID
    assert ids[1:-1] == encode_sequence(text).tolist()


@many
@given(dna)
def test_decode_of_encode_is_the_normalised_sequence(text):
    ids = NUCLEOTIDE(text)["input_ids"]
    assert NUCLEOTIDE.decode(ids, skip_special_tokens=True) == normalised(text)


@many
@given(dna)
def test_reverse_complement_twice_is_identity(text):
    assert reverse_complement(reverse_complement(text)) == text
    ids = encode_sequence(text)
    assert np.array_equal(reverse_complement(reverse_complement(ids)), ids)
    # and the two representations agree: rc of ids == ids of rc
    assert np.array_equal(reverse_complement(ids), encode_sequence(reverse_complement(text)))


def test_reverse_complement_examples():
    assert reverse_complement("ACGTNacgtRYKM") == "KMRYacgtNACGT"
    ids = encode_sequence("AACGN")
    assert reverse_complement(ids).tolist() == encode_sequence("NCGTT").tolist()


@many
@given(st.text(alphabet=st.sampled_from("ACGTacgt"), min_size=6, max_size=200))
def test_overlapping_kmer_decode_round_trip(text):
    ids = OVERLAPPING(text)["input_ids"]
    assert len(ids) == len(text) - 6 + 1 + 2
    assert OVERLAPPING.decode(ids, skip_special_tokens=True) == text.upper()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ACGTN"), min_size=6, max_size=120))
def test_overlapping_kmer_keeps_length_and_every_n(text):
    decoded = OVERLAPPING.decode(OVERLAPPING(text)["input_ids"])
    assert len(decoded) == len(text)
    assert all(d == t or d == "N" for d, t in zip(decoded, text))
    assert all(d == "N" for d, t in zip(decoded, text) if t == "N")


@many
@given(dna)
def test_kmer_remote_code_restates_the_alphabet_faithfully(text):
    """tokenization_kmer.py must stand alone (remote code), so it restates the specials and normalisation."""
    assert OVERLAPPING.normalize(text) == normalised(text)
    assert tuple(OVERLAPPING.convert_ids_to_tokens(list(alphabet.SPECIAL_IDS))) == alphabet.SPECIAL_TOKENS


def test_kmer_vocabulary_sizes():
    assert len(OVERLAPPING) == 4 ** 6 + 5 == 4101
    non_overlapping = load_tokenizer("kmer", k=6, stride=6)
    assert len(non_overlapping) % 8 == 0 and len(non_overlapping) >= 4096 + 10


@settings(max_examples=300, deadline=None)
@given(dna)
def test_non_overlapping_kmer_round_trip_with_single_nt_fallback(text):
    tokenizer = load_tokenizer("kmer", k=3, stride=3)
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == normalised(text)
    tokens = tokenizer.convert_ids_to_tokens(ids[1:-1])
    assert all(len(t) in (1, 3) for t in tokens)


def test_non_overlapping_kmer_example():
    tokenizer = load_tokenizer("kmer", k=3, stride=3)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("ACGTNACGTAC")["input_ids"])
    assert tokens == ["[CLS]", "ACG", "T", "N", "ACG", "TAC", "[SEP]"]


def test_bad_tokenizer_arguments():
    with pytest.raises(ValueError, match="kind='bpe'"):
        load_tokenizer("bpe")
    with pytest.raises(ValueError, match="stride=4"):
        load_tokenizer("kmer", k=6, stride=4)
    with pytest.raises(ValueError, match="shorter than k=6"):
        OVERLAPPING("ACG")


def test_mask_token_in_text_and_padding():
    batch = NUCLEOTIDE(["ACG[MASK]T", "AC"], padding=True, return_tensors="np")
    assert batch["input_ids"][0].tolist() == [2, 5, 6, 7, 4, 8, 3]
    assert batch["input_ids"][1].tolist() == [2, 5, 6, 3, 0, 0, 0]
    assert "token_type_ids" not in batch


@pytest.mark.parametrize("kind, kwargs", [("nucleotide", {}), ("kmer", {"k": 4, "stride": 4})])
def test_fast_tokenizers_save_and_load_without_remote_code(tmp_path, kind, kwargs):
    import json

    from transformers import AutoTokenizer

    tokenizer = load_tokenizer(kind, **kwargs)
    save_tokenizer(tokenizer, tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast" and "auto_map" not in config
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "ACGTNacgtRYACGTTTGA"
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
