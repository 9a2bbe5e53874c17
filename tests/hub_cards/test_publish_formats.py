"""nucel-publish --format modernbert | nucel: each folder loads in a fresh process that cannot import this
repository, under this transformers and (in `make test-compat`) the other one, with outputs equal to the NucEL
model's. The stock folder needs no trust_remote_code and holds no code. This file runs under 5.x and 4.48."""

import json
import os

import pytest
import torch
from conftest import interpreters, run_fresh, saved_inputs, tiny_config

from nucel.hub_cards import publish
from nucel.modeling_nucel import (
    NucELForMaskedLM,
    NucELForReplacedTokenDetection,
    NucELForSequenceClassification,
    NucELForTokenClassification,
)
from nucel.tokenization.hf_tokenizers import load_tokenizer, save_tokenizer

pytestmark = pytest.mark.slow  # eight folders published, each proved in a fresh process (~1 min)

# Non-default layer pattern and RoPE bases: a folder that lost them would still load, but compute another function.
SHAPE = dict(global_attn_every_n_layers=2, global_rope_theta=20000.0, local_rope_theta=5000.0, num_labels=3)
MODELS = {  # folder -> (NucEL class, the Auto class users load the published folder with)
    "discriminator": (NucELForReplacedTokenDetection, "AutoModel"),
    "generator": (NucELForMaskedLM, "AutoModelForMaskedLM"),
    "classifier": (NucELForSequenceClassification, "AutoModelForSequenceClassification"),
    "tagger": (NucELForTokenClassification, "AutoModelForTokenClassification"),
}

LOADER = r"""
import json
import os

import torch
import transformers

root, inputs_path, outputs_path, code = sys.argv[1:5]
inputs = torch.load(inputs_path)
outputs = {}
for entry in sys.argv[5:]:
    folder, auto_name = entry.split(":")
    path = os.path.join(root, folder)
    model = getattr(transformers, auto_name).from_pretrained(path, trust_remote_code=code == "nucel").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=code == "nucel")
    assert tokenizer("ACGT")["input_ids"] == [2, 5, 6, 7, 8, 3], tokenizer("ACGT")["input_ids"]
    with torch.no_grad():
        outputs[folder] = (type(model).__module__, model(**inputs)[0])
torch.save(outputs, outputs_path)
"""


@pytest.fixture(scope="module")
def nucel_folders(tmp_path_factory):
    """One saved NucEL folder per head (tokenizer included), and each model's outputs on a padded batch."""
    root = tmp_path_factory.mktemp("nucel")
    inputs = saved_inputs(root)
    expected = {}
    for folder, (model_class, _) in MODELS.items():
        torch.manual_seed(0)
        model = model_class(tiny_config(**SHAPE)).eval()
        model.save_pretrained(root / folder)
        save_tokenizer(load_tokenizer("nucleotide"), root / folder)
        with torch.no_grad():
            output = model(**inputs)
        # the discriminator's stock folder is its backbone: its users get the embeddings
        expected[folder] = output.last_hidden_state if folder == "discriminator" else output[0]
    return root, expected


@pytest.fixture(scope="module")
def published(nucel_folders, tmp_path_factory):
    """Every head published in both formats with this Python: {format: (root, {folder: what publish returned})}."""
    source, _ = nucel_folders
    found = {}
    for format_ in publish.FORMATS:
        root = tmp_path_factory.mktemp(format_)
        found[format_] = (root, {folder: publish.main(["--model", str(source / folder), "--output-dir",
                                                       str(root / folder), "--format", format_])
                                 for folder in MODELS})
    return found


def test_stock_folder_is_plain_modernbert(published):
    root, loaded = published["modernbert"]
    for folder in MODELS:
        names = {name for name in os.listdir(root / folder) if not name.startswith(".")}
        assert {"LICENSE", "README.md", "config.json", "model.safetensors", "tokenizer.json",
                "tokenizer_config.json"} <= names and not [n for n in names if n.endswith(".py")], folder
        config = json.loads((root / folder / "config.json").read_text())
        assert config["model_type"] == "modernbert" and "auto_map" not in config
        assert config["architectures"][0].startswith("ModernBert")
        assert config["classifier_pooling"] == "mean"  # the project's recommendation travels with the weights
        assert loaded[folder]["model_module"].startswith("transformers.models.modernbert")
        tokenizer_config = json.loads((root / folder / "tokenizer_config.json").read_text())
        assert not {"local_files_only", "is_local"} & set(tokenizer_config)
        card = (root / folder / "README.md").read_text()
        usage = card.split("## Usage")[1].split("## Model")[0]
        assert "from_pretrained(" in usage and "trust_remote_code" not in usage and "## Citation" in card
    assert loaded["discriminator"]["model_class"] == "ModernBertModel"
    assert loaded["generator"]["model_class"] == "ModernBertForMaskedLM"


def test_stock_export_reports_what_it_leaves_out(nucel_folders, tmp_path, capsys):
    source, _ = nucel_folders
    publish.main(["--model", str(source / "discriminator"), "--output-dir", str(tmp_path / "o"),
                  "--format", "modernbert"])
    printed = capsys.readouterr().out
    assert "leaves out the replaced-token-detection head" in printed
    assert "mask_token_id, nucleotide_token_ids" in printed


@pytest.mark.parametrize("python", interpreters())
@pytest.mark.parametrize("format_", ["modernbert", "nucel"])
def test_published_folder_loads_with_equal_outputs(nucel_folders, published, tmp_path, python, format_):
    source, expected = nucel_folders
    root, _ = published[format_]
    entries = [f"{folder}:{auto}" for folder, (_, auto) in MODELS.items()]
    run_fresh(python, LOADER, [root, source / "inputs.pt", tmp_path / "out.pt", format_, *entries], tmp_path)
    outputs = torch.load(tmp_path / "out.pt")
    mask = torch.load(source / "inputs.pt")["attention_mask"].bool()
    for folder, reference in expected.items():
        module, got = outputs[folder]
        assert module.startswith("transformers.models.modernbert" if format_ == "modernbert"
                                 else "transformers_modules"), module
        if got.shape[:2] == mask.shape:  # per-token outputs: padded positions are unspecified
            got, reference = got[mask], reference[mask]
        torch.testing.assert_close(got, reference, atol=1e-5, rtol=1e-5, msg=folder)
