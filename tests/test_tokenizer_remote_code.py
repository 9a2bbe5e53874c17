"""Saved tokenizers load in a fresh process that cannot import this repo: the nucleotide tokenizer without remote
code, the overlapping k-mer tokenizer through its saved `tokenization_kmer.py`. `make test-compat` runs this file
under transformers 4.48 too, with NUCEL_OTHER_PYTHON pointing at the other version."""

import json
import os
import subprocess
import sys

import pytest

from tokenization import load_tokenizer, save_tokenizer

TEXT = "ACGTNacgtRYACGTTTGAGGCT"

LOADER = r"""
import json, sys

class BlockRepoPackages:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("modeling_nucel", "tokenization", "training", "hub_cards"):
            raise ImportError("blocked import of " + name)

sys.meta_path.insert(0, BlockRepoPackages())
from transformers import AutoTokenizer

folder, remote, text = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=remote)
ids = tokenizer(text)["input_ids"]
print(json.dumps({"ids": ids, "decoded": tokenizer.decode(ids, skip_special_tokens=True)}))
"""


def interpreters():
    found = [pytest.param(sys.executable, id="this-python")]
    if os.environ.get("NUCEL_OTHER_PYTHON"):
        found.append(pytest.param(os.environ["NUCEL_OTHER_PYTHON"], id="other-python"))
    return found


@pytest.mark.parametrize("python", interpreters())
@pytest.mark.parametrize("kind, kwargs, remote", [
    ("nucleotide", {}, False),
    ("kmer", {"k": 6, "stride": 6}, False),
    ("kmer", {"k": 6, "stride": 1}, True),
])
def test_saved_tokenizer_loads_in_fresh_process(tmp_path, python, kind, kwargs, remote):
    tokenizer = load_tokenizer(kind, **kwargs)
    save_tokenizer(tokenizer, tmp_path / "tok")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run([python, "-c", LOADER, str(tmp_path / "tok"), "1" if remote else "0", TEXT],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["ids"] == tokenizer(TEXT)["input_ids"]
    assert loaded["decoded"] == tokenizer.decode(tokenizer(TEXT)["input_ids"], skip_special_tokens=True)
