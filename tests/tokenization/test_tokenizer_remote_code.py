"""Saved tokenizers load in a fresh process that cannot import this repo: the nucleotide tokenizer without remote
code, the overlapping k-mer tokenizer through its saved `tokenization_kmer.py`. `make test-compat` runs this file
under transformers 4.48 too, with NUCEL_OTHER_PYTHON pointing at the other version."""

import json

import pytest
from conftest import interpreters, run_fresh

from nucel.tokenization import load_tokenizer, save_tokenizer

TEXT = "ACGTNacgtRYACGTTTGAGGCT"

LOADER = r"""
import json
from transformers import AutoTokenizer

folder, remote, text = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=remote)
ids = tokenizer(text)["input_ids"]
print(json.dumps({"ids": ids, "decoded": tokenizer.decode(ids, skip_special_tokens=True)}))
"""


@pytest.mark.parametrize("python", interpreters())
@pytest.mark.parametrize("kind, kwargs, remote", [
    ("nucleotide", {}, False),
    ("kmer", {"k": 6, "stride": 6}, False),
    ("kmer", {"k": 6, "stride": 1}, True),
])
def test_saved_tokenizer_loads_in_fresh_process(tmp_path, python, kind, kwargs, remote):
    tokenizer = load_tokenizer(kind, **kwargs)
    save_tokenizer(tokenizer, tmp_path / "tok")
    stdout = run_fresh(python, LOADER, [tmp_path / "tok", "1" if remote else "0", TEXT], tmp_path)
    loaded = json.loads(stdout.strip().splitlines()[-1])
    assert loaded["ids"] == tokenizer(TEXT)["input_ids"]
    assert loaded["decoded"] == tokenizer.decode(tokenizer(TEXT)["input_ids"], skip_special_tokens=True)
