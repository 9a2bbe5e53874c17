"""Hub folders published before the namespace move (`nucel.*`) still load, both ways and to the same numbers.

tests/fixtures/hub_before_the_move/ holds two folders that commit a87d23c's `training/publish.py` assembled from
one tiny discriminator export (16 wide, 2 layers, 128 positions): `nucel/` (remote code, every NucEL head) and
`modernbert/` (transformers' own classes, no code). Each must load
- through its own files in a fresh process that cannot import this package (what Hub users get), and
- through this package (`nucel.model_folder.load`, the loader of every command),
with equal hidden states on a padded batch, under this transformers and (in `make test-compat`) the other one.
"""

import os
import shutil

import pytest
import torch
from conftest import REPO_ROOT, interpreters, run_fresh, saved_inputs

from nucel.model_folder import load

BEFORE = os.path.join(REPO_ROOT, "tests", "fixtures", "hub_before_the_move")

LOADER = r"""
import torch
import transformers

folder, code, inputs_path, outputs_path = sys.argv[1:5]
inputs = torch.load(inputs_path)
model = transformers.AutoModel.from_pretrained(folder, trust_remote_code=code == "nucel").eval()
tokenizer = transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=code == "nucel")
assert tokenizer("ACGT")["input_ids"] == [2, 5, 6, 7, 8, 3], tokenizer("ACGT")["input_ids"]
with torch.no_grad():
    torch.save((type(model).__name__, model(**inputs)[0]), outputs_path)
"""


@pytest.mark.slow
@pytest.mark.parametrize("python", interpreters())
@pytest.mark.parametrize("code, auto_class", [("nucel", "NucELModel"), ("modernbert", "ModernBertModel")])
def test_a_folder_published_before_the_move_loads_both_ways_to_the_same_numbers(python, code, auto_class,
                                                                                  tmp_path):
    folder = tmp_path / code
    shutil.copytree(os.path.join(BEFORE, code), folder)  # the fresh process caches its remote code beside it
    inputs = saved_inputs(tmp_path)
    run_fresh(python, LOADER, [folder, code, tmp_path / "inputs.pt", tmp_path / "outputs.pt"], tmp_path)
    name, published = torch.load(tmp_path / "outputs.pt")
    assert name == auto_class

    loaded = load(str(folder), ("encoder",), device="cpu", dtype="float32")
    with torch.no_grad():
        ours = loaded["encoder"](**inputs)[0]
    real = inputs["attention_mask"].bool()  # padding rows are not compared: neither model defines them
    assert torch.allclose(ours[real], published[real], atol=1e-5)
    assert loaded.layout.cls_id == 2 and loaded.layout.sep_id == 3
