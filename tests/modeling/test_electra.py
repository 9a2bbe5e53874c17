"""The ELECTRA objective: what gets sampled, what gets labelled, what the loss is, where gradients flow."""

import pytest
import torch
import torch.nn.functional as F
from conftest import dna_batch

from nucel.modeling_nucel import NucELForPreTraining

A_C_G_T = torch.tensor([5, 6, 7, 8])


def masked_batch(seed=0, rate=0.3):
    """Real specials at the ends and padding; masks only nucleotides (masking lives in training/)."""
    input_ids, attention_mask = dna_batch(lengths=[80, 50, 12], length=80, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    selectable = torch.isin(input_ids, torch.tensor([5, 6, 7, 8, 9]))
    masked = selectable & (torch.rand(input_ids.shape, generator=generator) < rate)
    labels = input_ids.masked_fill(~masked, -100)
    return input_ids.masked_fill(masked, 4), attention_mask, labels, input_ids


def pretraining_model(make_config, seed=0, **overrides):
    torch.manual_seed(seed)
    return NucELForPreTraining(make_config(**overrides))


def test_replacements_are_nucleotides_and_labels_follow_the_rules(make_config):
    model = pretraining_model(make_config)
    inputs, attention_mask, labels, original = masked_batch()
    out = model(inputs, attention_mask, labels=labels)
    masked = labels != -100
    # unmasked positions are the original sequence; masked positions hold a sampled A/C/G/T
    assert torch.equal(out.replaced_input_ids[~masked], original[~masked])
    assert torch.isin(out.replaced_input_ids[masked], A_C_G_T).all()
    # label = replaced iff it differs from the original (a sample equal to the original is "original")
    scored = out.discriminator_labels != -100
    assert torch.equal(out.discriminator_labels[scored], (out.replaced_input_ids != original)[scored].float())
    assert ((out.replaced_input_ids == original) & masked & scored).any(), "some samples should match the original"
    # padding and special tokens are never scored
    special_or_pad = torch.isin(original, torch.tensor([0, 1, 2, 3, 4])) | ~attention_mask.bool()
    assert torch.equal(scored, ~special_or_pad)


def test_loss_is_generator_plus_weighted_discriminator(make_config):
    model = pretraining_model(make_config, discriminator_weight=50.0)
    inputs, attention_mask, labels, _ = masked_batch()
    out = model(inputs, attention_mask, labels=labels)
    masked = labels != -100
    generator_loss = F.cross_entropy(out.generator_logits, labels[masked])
    scored = out.discriminator_labels != -100
    discriminator_loss = F.binary_cross_entropy_with_logits(out.logits[scored], out.discriminator_labels[scored])
    torch.testing.assert_close(out.generator_loss, generator_loss)
    torch.testing.assert_close(out.discriminator_loss, discriminator_loss)
    torch.testing.assert_close(out.loss, generator_loss + 50.0 * discriminator_loss)


def test_discriminator_loss_does_not_reach_the_generator(make_config):
    model = pretraining_model(make_config)
    inputs, attention_mask, labels, _ = masked_batch()
    torch.manual_seed(7)
    model(inputs, attention_mask, labels=labels).loss.backward()
    full = {n: p.grad.clone() for n, p in model.generator.named_parameters()}
    assert all(p.grad is not None for p in model.discriminator.parameters())
    model.zero_grad()
    torch.manual_seed(7)
    out = model(inputs, attention_mask, labels=labels)
    F.cross_entropy(out.generator_logits, labels[labels != -100]).backward()
    for name, grad in full.items():
        torch.testing.assert_close(model.generator.get_parameter(name).grad, grad)


def test_low_temperature_samples_the_generators_best_nucleotide(make_config):
    model = pretraining_model(make_config, generator_temperature=1e-6)
    inputs, attention_mask, labels, _ = masked_batch()
    out = model(inputs, attention_mask, labels=labels)
    best = A_C_G_T[out.generator_logits[:, A_C_G_T].argmax(-1)]
    assert torch.equal(out.replaced_input_ids[labels != -100], best)


def test_no_masked_position_gives_zero_generator_loss(make_config):
    model = pretraining_model(make_config)
    inputs, attention_mask, _, _ = masked_batch()
    out = model(inputs, attention_mask, labels=torch.full_like(inputs, -100))
    assert out.generator_loss == 0 and (out.discriminator_labels[out.discriminator_labels != -100] == 0).all()
    assert torch.isfinite(out.loss)


def test_without_labels_only_detects(make_config):
    model = pretraining_model(make_config).eval()
    inputs, attention_mask, _, _ = masked_batch()
    out = model(inputs, attention_mask)
    assert out.loss is None and out.logits.shape == inputs.shape


def test_mismatched_labels_are_refused(make_config):
    model = pretraining_model(make_config)
    inputs, attention_mask, labels, _ = masked_batch()
    with pytest.raises(ValueError, match="labels shape"):
        model(inputs, attention_mask, labels=labels[:, :10])


@pytest.mark.parametrize("share", [False, True])
def test_components_export_and_reload_through_auto_classes(make_config, tmp_path, share):
    from transformers import AutoModel, AutoModelForMaskedLM

    model = pretraining_model(make_config, share_embeddings=share).eval()
    inputs, attention_mask, labels, _ = masked_batch()
    if share:  # one training step so the projection has moved the shared table away from the unused own table
        model.train()
        model(inputs, attention_mask, labels=labels).loss.backward()
        assert model.generator.model.embeddings.tok_embeddings.weight.grad is None
        assert model.embedding_projection.weight.grad is not None
        model.eval()
    with torch.no_grad():
        generator_logits = model.generator_logits(inputs, attention_mask, labels != -100)
        discriminator_hidden = model.discriminator(inputs, attention_mask).last_hidden_state
    paths = model.save_components(tmp_path)
    generator = AutoModelForMaskedLM.from_pretrained(paths["generator"]).eval()
    discriminator = AutoModel.from_pretrained(paths["discriminator"]).eval()
    assert type(generator).__name__ == "NucELForMaskedLM" and type(discriminator).__name__ == "NucELModel"
    assert generator.config.hidden_size == 32 and discriminator.config.hidden_size == 64
    with torch.no_grad():
        torch.testing.assert_close(generator(inputs, attention_mask).logits[labels != -100], generator_logits,
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(discriminator(inputs, attention_mask).last_hidden_state, discriminator_hidden)


def test_discriminator_export_keeps_the_replaced_token_head(make_config, tmp_path):
    """AutoModelForPreTraining on the discriminator folder reproduces the pretraining model's detection logits, and
    the fine-tuning heads read only its backbone (the detection head never lands in their classifier)."""
    from transformers import AutoModelForPreTraining, AutoModelForTokenClassification

    model = pretraining_model(make_config).eval()
    inputs, attention_mask, _, _ = masked_batch()
    paths = model.save_components(tmp_path)
    detector, info = AutoModelForPreTraining.from_pretrained(paths["discriminator"], output_loading_info=True)
    assert type(detector).__name__ == "NucELForReplacedTokenDetection" and not info["missing_keys"]
    with torch.no_grad():
        expected = model.detect_replaced(inputs, attention_mask)
        output = detector(inputs, attention_mask)
        torch.testing.assert_close(output.logits, expected)
        torch.testing.assert_close(output.last_hidden_state, model.discriminator(inputs, attention_mask)[0])
    labels = (torch.rand(inputs.shape) < 0.2).float().masked_fill(attention_mask == 0, -100.0)
    loss = detector(inputs, attention_mask, labels=labels).loss
    scored = labels != -100
    torch.testing.assert_close(loss, torch.nn.functional.binary_cross_entropy_with_logits(expected[scored],
                                                                                          labels[scored]))
    tagger, info = AutoModelForTokenClassification.from_pretrained(paths["discriminator"], num_labels=1,
                                                                   output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight", "head.dense.weight",
                                            "head.norm.weight"]
