import pytest
import torch

from modeling_nucel import NucELForMaskedLM, NucELForSequenceClassification, NucELForTokenClassification, NucELModel


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
