import pytest
import torch
import transformers

from nucel.modeling_nucel import (
    NucELForMaskedLM,
    NucELForPreTraining,
    NucELForReplacedTokenDetection,
    NucELForSequenceClassification,
    NucELForTokenClassification,
    NucELModel,
)

AUTO = {
    NucELModel: transformers.AutoModel,
    NucELForMaskedLM: transformers.AutoModelForMaskedLM,
    NucELForReplacedTokenDetection: transformers.AutoModelForPreTraining,
    NucELForPreTraining: NucELForPreTraining,  # the joint training wrapper loads through its own class
    NucELForSequenceClassification: transformers.AutoModelForSequenceClassification,
    NucELForTokenClassification: transformers.AutoModelForTokenClassification,
}


@pytest.mark.parametrize("model_class", list(AUTO))
def test_round_trip_through_auto_class(make_config, padded_batch, tmp_path, model_class):
    torch.manual_seed(0)
    model = model_class(make_config(num_labels=3)).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert (tmp_path / "modeling_nucel.py").exists() and (tmp_path / "configuration_nucel.py").exists()
    loaded = AUTO[model_class].from_pretrained(tmp_path).eval()
    assert type(loaded) is model_class
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, msg=name)
    if model_class is not NucELForPreTraining:  # its forward samples; compared through its parts below
        with torch.no_grad():
            torch.testing.assert_close(loaded(*padded_batch)[0], model(*padded_batch)[0])
    if model_class in (NucELForMaskedLM, NucELForPreTraining):
        mlm = loaded if model_class is NucELForMaskedLM else loaded.generator
        assert mlm.decoder.weight is mlm.model.embeddings.tok_embeddings.weight


def test_config_json_lists_every_auto_class(make_config, tmp_path):
    import json

    NucELModel(make_config()).save_pretrained(tmp_path)
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert set(auto_map) == {"AutoConfig", "AutoModel", "AutoModelForMaskedLM", "AutoModelForPreTraining",
                             "AutoModelForSequenceClassification", "AutoModelForTokenClassification"}
