import pytest
import torch

from nucel.modeling_nucel import (
    NucELForMaskedLM,
    NucELForSequenceClassification,
    NucELForTokenClassification,
    NucELModel,
)


@pytest.mark.parametrize("problem_type, num_labels, labels", [
    ("single_label_classification", 3, torch.tensor([0, 2, 1])),
    ("multi_label_classification", 4, torch.tensor([[1.0, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 1]])),
    ("regression", 1, torch.tensor([0.5, -1.0, 2.0])),
])
def test_sequence_classification_problem_types(make_config, padded_batch, problem_type, num_labels, labels):
    torch.manual_seed(0)
    model = NucELForSequenceClassification(make_config(num_labels=num_labels))
    out = model(*padded_batch, labels=labels)
    assert model.config.problem_type == problem_type  # detected from labels, as transformers does
    logits = out.logits
    expected = {
        "single_label_classification": lambda: torch.nn.functional.cross_entropy(logits, labels),
        "multi_label_classification": lambda: torch.nn.functional.binary_cross_entropy_with_logits(logits, labels),
        "regression": lambda: torch.nn.functional.mse_loss(logits.squeeze(-1), labels),
    }[problem_type]()
    torch.testing.assert_close(out.loss, expected)
    out.loss.backward()
    assert model.classifier.weight.grad.abs().sum() > 0


def test_mean_pooling_ignores_padding(make_config):
    torch.manual_seed(0)
    model = NucELForSequenceClassification(make_config(num_labels=2, classifier_pooling="mean")).eval()
    input_ids = torch.randint(5, 9, (1, 30))
    padded = torch.cat([input_ids, torch.zeros(1, 20, dtype=torch.long)], 1)
    mask = torch.cat([torch.ones(1, 30), torch.zeros(1, 20)], 1).long()
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids).logits, model(padded, mask).logits, atol=1e-5, rtol=1e-5)


def test_token_classification_per_nucleotide(make_config, padded_batch):
    torch.manual_seed(0)
    input_ids, attention_mask = padded_batch
    model = NucELForTokenClassification(make_config(num_labels=3))
    labels = torch.randint(0, 3, input_ids.shape).masked_fill(~attention_mask.bool(), -100)
    out = model(input_ids, attention_mask, labels=labels)
    assert out.logits.shape == (*input_ids.shape, 3)
    keep = labels != -100
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits[keep], labels[keep]))


def test_masked_lm_loss_and_tied_decoder(make_config, padded_batch):
    torch.manual_seed(0)
    input_ids, attention_mask = padded_batch
    model = NucELForMaskedLM(make_config())
    assert model.decoder.weight is model.model.embeddings.tok_embeddings.weight
    labels = input_ids.masked_fill(torch.rand(input_ids.shape) > 0.15, -100)
    out = model(input_ids, attention_mask, labels=labels)
    keep = labels != -100
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits[keep], labels[keep]))
    model.config.sparse_prediction = True
    sparse = model(input_ids, attention_mask, labels=labels)
    torch.testing.assert_close(sparse.loss, out.loss, atol=1e-6, rtol=1e-6)
    assert sparse.logits.shape == (int(keep.sum()), model.config.vocab_size)


def test_gradient_checkpointing_gives_the_same_gradients(make_config, padded_batch):
    torch.manual_seed(0)
    model = NucELModel(make_config()).train()
    model.embeddings.drop.p = 0.0

    def gradients():
        model.zero_grad()
        model(*padded_batch).last_hidden_state.pow(2).mean().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain = gradients()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert model.gradient_checkpointing
    checkpointed = gradients()
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], atol=1e-6, rtol=1e-5)


def test_hidden_states_one_per_layer_plus_embeddings(make_config, padded_batch):
    model = NucELModel(make_config()).eval()
    out = model(*padded_batch, output_hidden_states=True)
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    assert not model(*padded_batch, return_dict=False)[0].isnan().any()


def truncated_std(std, cutoff):
    """Standard deviation of a normal(0, std) truncated at ±cutoff·std."""
    from scipy import stats

    return std * stats.truncnorm(-cutoff, cutoff).std()


def test_fresh_weights_follow_the_modernbert_init(make_config):
    torch.manual_seed(0)
    config = make_config(hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_labels=3)
    model = NucELForSequenceClassification(config)
    cutoff, layers = config.initializer_cutoff_factor, config.num_hidden_layers
    expected = {
        model.model.embeddings.tok_embeddings.weight: config.initializer_range,
        model.model.layers[1].attn.Wqkv.weight: config.initializer_range,
        model.model.layers[1].mlp.Wi.weight: config.initializer_range,
        model.model.layers[1].attn.Wo.weight: config.initializer_range / (2 * layers) ** 0.5,
        model.model.layers[1].mlp.Wo.weight: config.initializer_range / (2 * layers) ** 0.5,
        model.head.dense.weight: config.initializer_range / (2 * layers) ** 0.5,
        model.classifier.weight: config.hidden_size ** -0.5,
    }
    for weight, std in expected.items():
        assert weight.abs().max() <= cutoff * std + 1e-6
        assert weight.std().item() == pytest.approx(truncated_std(std, cutoff), rel=0.1)
    assert torch.equal(model.classifier.bias, torch.zeros(3))
    assert torch.equal(model.model.layers[1].mlp_norm.weight, torch.ones(config.hidden_size))


@pytest.mark.parametrize("head", [NucELForSequenceClassification, NucELForTokenClassification, NucELForMaskedLM])
def test_heads_missing_from_a_checkpoint_are_initialised(make_config, tmp_path, head):
    """An encoder checkpoint loaded into a head: the new weights follow the init, never uninitialised memory."""
    torch.manual_seed(0)
    encoder = NucELModel(make_config())
    encoder.save_pretrained(tmp_path)
    model = head.from_pretrained(tmp_path, num_labels=2)
    torch.testing.assert_close(model.model.layers[1].attn.Wo.weight, encoder.layers[1].attn.Wo.weight)
    new = [model.head.dense.weight] + ([model.classifier.weight] if head is not NucELForMaskedLM else [])
    for weight in new:
        assert torch.isfinite(weight).all()
        assert 0 < weight.std() < 0.2
    bias = model.classifier.bias if head is not NucELForMaskedLM else model.decoder.bias
    assert torch.equal(bias, torch.zeros_like(bias))
