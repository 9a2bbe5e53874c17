"""A saved folder is the whole model: a fresh process that cannot import this repo loads every head through the
Auto classes with trust_remote_code=True, offline, and reproduces the outputs. `make test-compat` also runs this
file under transformers 4.48 and sets NUCEL_OTHER_PYTHON so each version loads what the other saved."""

import pytest
import torch
from conftest import dna_batch, interpreters, run_fresh, saved_inputs, tiny_config

from nucel.modeling_nucel import (
    NucELForMaskedLM,
    NucELForReplacedTokenDetection,
    NucELForSequenceClassification,
    NucELForTokenClassification,
    NucELModel,
)

HEADS = {
    "AutoModel": NucELModel,
    "AutoModelForMaskedLM": NucELForMaskedLM,
    "AutoModelForPreTraining": NucELForReplacedTokenDetection,  # the ELECTRA discriminator with its head
    "AutoModelForSequenceClassification": NucELForSequenceClassification,
    "AutoModelForTokenClassification": NucELForTokenClassification,
}
# The released NucEL discriminator's one-layer replaced-token head (nucel-convert), as the folder it is saved in.
LINEAR_HEAD = "linear-head:AutoModelForPreTraining"

LOADER = r"""
import torch
import transformers

root, inputs_path, outputs_path = sys.argv[1:4]
inputs = torch.load(inputs_path)
outputs = {}
for folder in sys.argv[4:]:  # a folder named after its Auto class, or "<name>:<Auto class>"
    auto_name = folder.split(":")[-1]
    path = root + "/" + folder.split(":")[0]
    model = getattr(transformers, auto_name).from_pretrained(path, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    with torch.no_grad():
        outputs[folder] = model(**inputs)[0]
torch.save(outputs, outputs_path)
print("loaded with transformers", transformers.__version__)
"""


@pytest.fixture(scope="module")
def saved_heads(tmp_path_factory):
    root = tmp_path_factory.mktemp("heads")
    inputs = saved_inputs(root)
    expected = {}
    for auto_name, model_class in HEADS.items():
        torch.manual_seed(0)
        model = model_class(tiny_config(num_labels=3)).eval()
        model.save_pretrained(root / auto_name)
        with torch.no_grad():
            expected[auto_name] = model(**inputs)[0]
    torch.manual_seed(0)
    model = NucELForReplacedTokenDetection(tiny_config(replaced_token_head="linear")).eval()
    model.save_pretrained(root / LINEAR_HEAD.split(":")[0])
    with torch.no_grad():
        expected[LINEAR_HEAD] = model(**inputs)[0]
    return root, expected


@pytest.mark.slow
@pytest.mark.parametrize("python", interpreters())
def test_fresh_process_loads_every_head_from_remote_code(saved_heads, tmp_path, python):
    root, expected = saved_heads
    run_fresh(python, LOADER, [root, root / "inputs.pt", tmp_path / "out.pt", *HEADS, LINEAR_HEAD], tmp_path)
    outputs = torch.load(tmp_path / "out.pt")
    mask = torch.load(root / "inputs.pt")["attention_mask"].bool()
    for auto_name, reference in expected.items():
        got = outputs[auto_name]
        if got.shape[:2] == mask.shape:  # per-token outputs: padded positions are unspecified
            got, reference = got[mask], reference[mask]
        torch.testing.assert_close(got, reference, msg=auto_name)


EXPORT_LOADER = r"""
import torch
import transformers

root, inputs_path, outputs_path = sys.argv[1:4]
inputs = torch.load(inputs_path)
loads = {"AutoModel": "discriminator", "AutoModelForPreTraining": "discriminator", "AutoModelForMaskedLM": "generator"}
outputs = {}
for auto_name, folder in loads.items():
    model = getattr(transformers, auto_name).from_pretrained(root + "/" + folder, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    with torch.no_grad():
        outputs[auto_name] = (type(model).__name__, model(**inputs)[0])
torch.save(outputs, outputs_path)
"""


@pytest.mark.slow
@pytest.mark.parametrize("python", interpreters())
def test_pretraining_export_loads_backbone_generator_and_detector(tmp_path, python):
    """The three loads of a pretraining export, in a fresh process: the backbone, the generator, and the
    discriminator with its replaced-token head (ELECTRA's zero-shot asset)."""
    from nucel.modeling_nucel import NucELForPreTraining

    torch.manual_seed(0)
    model = NucELForPreTraining(tiny_config()).eval()
    model.save_components(tmp_path / "export")
    input_ids, attention_mask = dna_batch(lengths=[60, 33], length=60)
    torch.save({"input_ids": input_ids, "attention_mask": attention_mask}, tmp_path / "inputs.pt")
    run_fresh(python, EXPORT_LOADER, [tmp_path / "export", tmp_path / "inputs.pt", tmp_path / "out.pt"], tmp_path)
    outputs = torch.load(tmp_path / "out.pt")
    with torch.no_grad():
        expected = {
            "AutoModel": ("NucELModel", model.discriminator(input_ids, attention_mask).last_hidden_state),
            "AutoModelForPreTraining": ("NucELForReplacedTokenDetection",
                                        model.detect_replaced(input_ids, attention_mask)),
            "AutoModelForMaskedLM": ("NucELForMaskedLM", model.generator(input_ids, attention_mask).logits),
        }
    real = attention_mask.bool()
    for auto_name, (class_name, reference) in expected.items():
        got_class, got = outputs[auto_name]
        assert got_class == class_name
        torch.testing.assert_close(got[real], reference[real], msg=auto_name)
