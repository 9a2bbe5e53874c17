"""transformers' own ModernBERT is the oracle: same state dict -> same outputs, in both directions."""

import pytest
import torch
import transformers
from conftest import dna_batch

from nucel.modeling_nucel import (
    NucELForMaskedLM,
    NucELForReplacedTokenDetection,
    NucELForSequenceClassification,
    NucELModel,
)


def assert_same_on_real_tokens(a, b, attention_mask):
    if a.dim() == 2 and a.shape[1] != attention_mask.shape[1]:  # sequence-level logits: nothing to select
        attention_mask = torch.ones(a.shape[0], dtype=torch.bool)
    torch.testing.assert_close(a[attention_mask.bool()], b[attention_mask.bool()], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("every_n", [3, 2])
def test_nucel_weights_in_modernbert(make_config, padded_batch, every_n):
    config = make_config(global_attn_every_n_layers=every_n, local_rope_theta=5000.0)
    torch.manual_seed(0)
    nucel = NucELModel(config).eval()
    stock = transformers.ModernBertModel(config.to_modernbert_config()).eval()
    stock.load_state_dict(nucel.state_dict(), strict=True)
    input_ids, attention_mask = padded_batch
    with torch.no_grad():
        assert_same_on_real_tokens(nucel(input_ids, attention_mask).last_hidden_state,
                                   stock(input_ids, attention_mask=attention_mask).last_hidden_state, attention_mask)
        torch.testing.assert_close(nucel(input_ids).last_hidden_state, stock(input_ids).last_hidden_state,
                                   atol=1e-5, rtol=1e-5)


def test_parameter_names_equal_modernbert(make_config):
    config = make_config()
    nucel_names = set(NucELForMaskedLM(config).state_dict())
    stock_names = set(transformers.ModernBertForMaskedLM(config.to_modernbert_config()).state_dict())
    assert nucel_names == stock_names
    assert {"model.embeddings.tok_embeddings.weight", "model.layers.0.attn.Wqkv.weight",
            "model.layers.0.mlp.Wi.weight", "model.final_norm.weight"} <= nucel_names


def test_modernbert_weights_in_nucel_via_from_modernbert(make_config, padded_batch, tmp_path):
    torch.manual_seed(1)
    stock = transformers.ModernBertForMaskedLM(make_config(vocab_size=27).to_modernbert_config()).eval()
    input_ids, attention_mask = padded_batch
    with torch.no_grad():
        expected = stock(input_ids, attention_mask=attention_mask)
    # from an instance: the backbone out of the MLM model
    backbone = NucELModel.from_modernbert(stock, mask_token_id=4).eval()
    # from a folder: the whole MLM model
    stock.save_pretrained(tmp_path)
    mlm = NucELForMaskedLM.from_modernbert(str(tmp_path), mask_token_id=4).eval()
    with torch.no_grad():
        stock_hidden = stock.model(input_ids, attention_mask=attention_mask).last_hidden_state
        assert_same_on_real_tokens(backbone(input_ids, attention_mask).last_hidden_state, stock_hidden,
                                   attention_mask)
        assert_same_on_real_tokens(mlm(input_ids, attention_mask).logits, expected.logits, attention_mask)
    assert backbone.config.vocab_size == 27


def test_sequence_classification_parity(make_config, padded_batch):
    config = make_config(num_labels=3, classifier_pooling="mean")
    torch.manual_seed(2)
    nucel = NucELForSequenceClassification(config).eval()
    stock = transformers.ModernBertForSequenceClassification(config.to_modernbert_config()).eval()
    stock.load_state_dict(nucel.state_dict(), strict=True)
    input_ids, attention_mask = padded_batch
    with torch.no_grad():
        torch.testing.assert_close(nucel(input_ids, attention_mask).logits,
                                   stock(input_ids, attention_mask=attention_mask).logits, atol=1e-5, rtol=1e-5)


def test_from_modernbert_rejects_other_models(make_config):
    with pytest.raises(TypeError, match="expected a ModernBertModel"):
        NucELModel.from_modernbert(torch.nn.Linear(2, 2))


def test_block_local_layers_equal_modernbert_on_odd_lengths(make_config):
    """Partial last block, a row shorter than one block, heavy padding: still stock ModernBERT's outputs."""
    config = make_config()
    torch.manual_seed(3)
    nucel = NucELModel(config).eval()
    stock = transformers.ModernBertModel(config.to_modernbert_config()).eval()
    stock.load_state_dict(nucel.state_dict(), strict=True)
    input_ids, attention_mask = dna_batch(lengths=[203, 11, 150], length=203)
    assert input_ids.shape[1] % config.local_attention != 0
    with torch.no_grad():
        assert_same_on_real_tokens(nucel(input_ids, attention_mask).last_hidden_state,
                                   stock(input_ids, attention_mask=attention_mask).last_hidden_state, attention_mask)


@pytest.mark.parametrize("model_class", [NucELModel, NucELForMaskedLM, NucELForSequenceClassification],
                         ids=lambda c: c.__name__)
def test_to_modernbert_and_back(make_config, padded_batch, model_class, tmp_path):
    """The stock export has equal outputs, and its config keeps the NucEL-only fields so the import recovers them."""
    config = make_config(num_labels=3, local_rope_theta=5000.0, mask_rate=0.2, generator_temperature=0.9)
    torch.manual_seed(3)
    nucel = model_class(config).eval()
    stock = nucel.to_modernbert()
    assert type(stock).__module__.startswith("transformers.models.modernbert")
    assert stock.config.classifier_pooling == "mean" and stock.config.mask_token_id == 4
    input_ids, attention_mask = padded_batch
    with torch.no_grad():
        ours = nucel(input_ids, attention_mask)[0]
        assert_same_on_real_tokens(stock(input_ids, attention_mask=attention_mask)[0], ours, attention_mask)
    stock.save_pretrained(tmp_path)
    back = model_class.from_modernbert(str(tmp_path)).eval()
    assert (back.config.mask_token_id, back.config.nucleotide_token_ids, back.config.mask_rate,
            back.config.generator_temperature) == (4, [5, 6, 7, 8], 0.2, 0.9)
    with torch.no_grad():
        assert_same_on_real_tokens(back(input_ids, attention_mask)[0], ours, attention_mask)
    with pytest.raises(TypeError, match="ModernBERT has no counterpart"):
        NucELForReplacedTokenDetection(config).to_modernbert()
