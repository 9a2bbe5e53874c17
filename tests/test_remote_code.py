"""A saved folder is the whole model: a fresh process that cannot import this repo loads every head through the
Auto classes with trust_remote_code=True, offline, and reproduces the outputs. `make test-compat` also runs this
file under transformers 4.48 and sets NUCEL_OTHER_PYTHON so each version loads what the other saved."""

import os
import subprocess
import sys

import pytest
import torch

from conftest import dna_batch, tiny_config
from modeling_nucel import (
    NucELForMaskedLM,
    NucELForPreTraining,
    NucELForSequenceClassification,
    NucELForTokenClassification,
    NucELModel,
)

HEADS = {
    "AutoModel": NucELModel,
    "AutoModelForMaskedLM": NucELForMaskedLM,
    "AutoModelForPreTraining": NucELForPreTraining,  # without labels: deterministic replaced-token detection
    "AutoModelForSequenceClassification": NucELForSequenceClassification,
    "AutoModelForTokenClassification": NucELForTokenClassification,
}

LOADER = r"""
import sys
import torch

class BlockRepoPackages:  # the saved folder must stand alone
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("modeling_nucel", "tokenization", "training", "hub_cards"):
            raise ImportError("blocked import of " + name)

sys.meta_path.insert(0, BlockRepoPackages())
import transformers

root, inputs_path, outputs_path = sys.argv[1:4]
inputs = torch.load(inputs_path)
outputs = {}
for auto_name in sys.argv[4:]:
    model = getattr(transformers, auto_name).from_pretrained(root + "/" + auto_name, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    with torch.no_grad():
        outputs[auto_name] = model(**inputs)[0]
torch.save(outputs, outputs_path)
print("loaded with transformers", transformers.__version__)
"""


@pytest.fixture(scope="module")
def saved_heads(tmp_path_factory):
    root = tmp_path_factory.mktemp("heads")
    input_ids, attention_mask = dna_batch(lengths=[60, 33], length=60)
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    torch.save(inputs, root / "inputs.pt")
    expected = {}
    for auto_name, model_class in HEADS.items():
        torch.manual_seed(0)
        model = model_class(tiny_config(num_labels=3)).eval()
        model.save_pretrained(root / auto_name)
        with torch.no_grad():
            expected[auto_name] = model(**inputs)[0]
    return root, expected


def interpreters():
    found = [pytest.param(sys.executable, id="this-python")]
    if os.environ.get("NUCEL_OTHER_PYTHON"):
        found.append(pytest.param(os.environ["NUCEL_OTHER_PYTHON"], id="other-python"))
    return found


@pytest.mark.parametrize("python", interpreters())
def test_fresh_process_loads_every_head_from_remote_code(saved_heads, tmp_path, python):
    root, expected = saved_heads
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run([python, "-c", LOADER, str(root), str(root / "inputs.pt"), str(tmp_path / "out.pt"),
                             *HEADS], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = torch.load(tmp_path / "out.pt")
    mask = torch.load(root / "inputs.pt")["attention_mask"].bool()
    for auto_name, reference in expected.items():
        got = outputs[auto_name]
        if got.shape[:2] == mask.shape:  # per-token outputs: padded positions are unspecified
            got, reference = got[mask], reference[mask]
        torch.testing.assert_close(got, reference, msg=auto_name)
