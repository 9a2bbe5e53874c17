"""The transformers model contract, as transformers' own common model tests (`ModelTesterMixin`, 4.48) check it,
for every NucEL class: outputs of attentions and hidden states (on the default backend too), inputs_embeds, tuple
outputs, save/load, gradient checkpointing, gradients reaching hidden states and attentions, embedding resizing.
transformers does not install its test suite, so the checks are restated here; `make test-compat` also runs this
file under transformers 4.48."""

import inspect
import tempfile

import pytest
import torch
from conftest import dna_batch, tiny_config

from nucel.modeling_nucel import (
    NucELForMaskedLM,
    NucELForPreTraining,
    NucELForReplacedTokenDetection,
    NucELForSequenceClassification,
    NucELForTokenClassification,
    NucELModel,
)

CLASSES = [NucELModel, NucELForMaskedLM, NucELForPreTraining, NucELForReplacedTokenDetection,
           NucELForSequenceClassification, NucELForTokenClassification]
BATCH, LENGTH = 2, 40  # longer than the tiny 16-token window: local and global layers differ


def build(model_class, seed=0, **config):
    torch.manual_seed(seed)
    model = model_class(tiny_config(num_labels=3, **config))
    return model.eval()


def inputs():
    input_ids, attention_mask = dna_batch(lengths=[LENGTH, 25], length=LENGTH)
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def labels_for(model_class, batch):
    """Labels each head trains on (ELECTRA's are MLM labels over masked input_ids)."""
    input_ids = batch["input_ids"]
    if model_class is NucELForSequenceClassification:
        return torch.tensor([0, 2])
    if model_class is NucELForTokenClassification:
        return torch.randint(0, 3, input_ids.shape).masked_fill(batch["attention_mask"] == 0, -100)
    if model_class is NucELForReplacedTokenDetection:
        return torch.randint(0, 2, input_ids.shape).float().masked_fill(batch["attention_mask"] == 0, -100)
    labels = torch.full_like(input_ids, -100)
    labels[:, 3:9] = input_ids[:, 3:9]
    if model_class in (NucELForMaskedLM, NucELForPreTraining):
        batch["input_ids"] = input_ids.masked_fill(labels != -100, 4)  # [MASK]
        return labels
    return None


def first_tensor(output):
    return output.logits if getattr(output, "logits", None) is not None else output.last_hidden_state


@pytest.mark.parametrize("model_class", CLASSES, ids=lambda c: c.__name__)
def test_attentions_returned_by_the_default_backend(model_class):
    model = build(model_class)
    assert model.config._attn_implementation == "sdpa"
    with torch.no_grad():
        attentions = model(**inputs(), output_attentions=True).attentions
    config = model.config
    assert len(attentions) == config.num_hidden_layers
    for weights in attentions:
        assert weights.shape == (BATCH, config.num_attention_heads, LENGTH, LENGTH)
        torch.testing.assert_close(weights.sum(-1), torch.ones(BATCH, config.num_attention_heads, LENGTH))


@pytest.mark.parametrize("model_class", CLASSES, ids=lambda c: c.__name__)
def test_hidden_states_returned(model_class):
    model = build(model_class)
    with torch.no_grad():
        hidden_states = model(**inputs(), output_hidden_states=True).hidden_states
    assert len(hidden_states) == model.config.num_hidden_layers + 1
    assert all(h.shape == (BATCH, LENGTH, model.config.hidden_size) for h in hidden_states)


@pytest.mark.parametrize("model_class", CLASSES, ids=lambda c: c.__name__)
def test_inputs_embeds_equal_input_ids(model_class):
    model = build(model_class)
    batch = inputs()
    embeds = model.get_input_embeddings()(batch["input_ids"])
    with torch.no_grad():
        from_ids = first_tensor(model(**batch))
        from_embeds = first_tensor(model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]))
    torch.testing.assert_close(from_embeds, from_ids)


@pytest.mark.parametrize("model_class", CLASSES, ids=lambda c: c.__name__)
def test_forward_signature_and_tuple_outputs(model_class):
    model = build(model_class)
    parameters = list(inspect.signature(model.forward).parameters)
    assert parameters[:2] == ["input_ids", "attention_mask"]
    for name in ("inputs_embeds", "output_attentions", "output_hidden_states", "return_dict"):
        assert name in parameters, name
    with torch.no_grad():
        as_dict = model(**inputs(), output_hidden_states=True)
        as_tuple = model(**inputs(), output_hidden_states=True, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(as_dict.to_tuple())
    torch.testing.assert_close(as_tuple[0], as_dict.to_tuple()[0])


@pytest.mark.parametrize("model_class", CLASSES, ids=lambda c: c.__name__)
def test_save_load_round_trip(model_class):
    model = build(model_class)
    batch = inputs()
    with torch.no_grad(), tempfile.TemporaryDirectory() as folder:
        before = first_tensor(model(**batch))
        model.save_pretrained(folder)
        loaded = model_class.from_pretrained(folder).eval()
        after = first_tensor(loaded(**batch))
    torch.testing.assert_close(after, before)


@pytest.mark.parametrize("model_class", CLASSES, ids=lambda c: c.__name__)
def test_training_and_gradient_checkpointing_agree(model_class):
    batch = inputs()
    labels = labels_for(model_class, batch)
    gradients = []
    for checkpointing in (False, True):
        model = build(model_class).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        torch.manual_seed(1)  # ELECTRA samples replacements: the same draw both times
        output = model(**batch, labels=labels) if labels is not None else model(**batch)
        loss = output.loss if labels is not None else first_tensor(output).float().pow(2).mean()
        loss.backward()
        gradients.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    assert gradients[0] and gradients[0].keys() == gradients[1].keys()
    for name, grad in gradients[0].items():
        torch.testing.assert_close(gradients[1][name], grad, msg=name)


@pytest.mark.parametrize("model_class", CLASSES, ids=lambda c: c.__name__)
def test_gradients_reach_hidden_states_and_attentions(model_class):
    model = build(model_class).train()
    output = model(**inputs(), output_hidden_states=True, output_attentions=True)
    hidden, attention = output.hidden_states[0], output.attentions[0]
    hidden.retain_grad()
    attention.retain_grad()
    first_tensor(output).float().sum().backward()
    assert hidden.grad is not None and attention.grad is not None


@pytest.mark.parametrize("model_class", [NucELModel, NucELForMaskedLM], ids=lambda c: c.__name__)
def test_resize_token_embeddings_keeps_the_decoder_tied(model_class):
    model = build(model_class)
    vocab = model.config.vocab_size
    model.resize_token_embeddings(vocab + 4)
    assert model.get_input_embeddings().weight.shape[0] == model.config.vocab_size == vocab + 4
    if model_class is NucELForMaskedLM:
        assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
        with torch.no_grad():
            assert model(**inputs()).logits.shape[-1] == vocab + 4


def test_generator_defaults_to_half_the_discriminator():
    """A 32-wide test model no longer carries the published 256 x 11 generator."""
    config = tiny_config(hidden_size=32, num_attention_heads=2, num_hidden_layers=4, intermediate_size=64,
                         generator_hidden_size=None, generator_num_hidden_layers=None,
                         generator_num_attention_heads=None, generator_intermediate_size=None)
    generator = config.generator_config()
    assert (generator.hidden_size, generator.num_hidden_layers, generator.num_attention_heads,
            generator.intermediate_size) == (16, 2, 1, 32)
    model = NucELForPreTraining(config)
    assert model.generator.num_parameters() < model.discriminator.num_parameters() / 3
    published = type(config)()
    assert (published.generator_hidden_size, published.generator_num_hidden_layers,
            published.generator_num_attention_heads, published.generator_intermediate_size) == (256, 11, 8, 1024)
    kept = type(config)(hidden_size=32, num_attention_heads=2, generator_hidden_size=256,
                        generator_num_attention_heads=8)  # a saved config keeps its values
    assert (kept.generator_hidden_size, kept.generator_num_attention_heads) == (256, 8)
