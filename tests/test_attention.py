"""Every attention backend computes the same function, and local layers see exactly their window."""

import pytest
import torch
import torch.nn.functional as F

import modeling_nucel.modeling_nucel as nucel_modeling
from conftest import dna_batch
from modeling_nucel import NucELModel


def encoder(config, implementation="sdpa", seed=0):
    torch.manual_seed(seed)
    model = NucELModel(config).eval()
    model.config._attn_implementation = implementation
    return model


def real_tokens(output, attention_mask):
    return output[attention_mask.bool()]


def test_eager_equals_sdpa_on_padded_batch_longer_than_window(make_config, padded_batch):
    input_ids, attention_mask = padded_batch
    model = encoder(make_config())
    with torch.no_grad():
        sdpa = model(input_ids, attention_mask).last_hidden_state
        model.config._attn_implementation = "eager"
        eager = model(input_ids, attention_mask).last_hidden_state
    assert input_ids.shape[1] > model.config.local_attention
    torch.testing.assert_close(real_tokens(eager, attention_mask), real_tokens(sdpa, attention_mask),
                               atol=1e-5, rtol=1e-5)
    assert torch.isfinite(eager).all() and torch.isfinite(sdpa).all()  # padded rows far from real tokens: no NaN


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_batched_equals_single_row(make_config, padded_batch, implementation):
    input_ids, attention_mask = padded_batch
    model = encoder(make_config(), implementation)
    with torch.no_grad():
        batched = model(input_ids, attention_mask).last_hidden_state
        for row in range(input_ids.shape[0]):
            n = int(attention_mask[row].sum())
            single = model(input_ids[row:row + 1, :n]).last_hidden_state[0]
            torch.testing.assert_close(batched[row, :n], single, atol=1e-5, rtol=1e-5)


def test_eager_weights_are_zero_outside_the_window(make_config, padded_batch):
    input_ids, attention_mask = padded_batch
    model = encoder(make_config(local_attention=16), "eager")
    with torch.no_grad():
        attentions = model(input_ids, attention_mask, output_attentions=True).attentions
    positions = torch.arange(input_ids.shape[1])
    outside = (positions[:, None] - positions[None, :]).abs() > 8  # (query, key)
    real_query = attention_mask.bool()[:, None, :, None]  # (batch, 1, query, 1)
    padded_key = ~attention_mask.bool()[:, None, None, :]  # (batch, 1, 1, key)
    for layer, weights in zip(model.layers, attentions):
        assert weights.masked_select(real_query & padded_key).abs().max() == 0.0
        row_sums = weights.sum(-1).masked_select(real_query.squeeze(-1))
        torch.testing.assert_close(row_sums, torch.ones_like(row_sums))
        beyond_window = weights.masked_select(real_query & outside & ~padded_key)
        if layer.attention_type == "sliding_attention":
            assert beyond_window.abs().max() == 0.0
        else:  # global layers do see past the window
            assert beyond_window.abs().max() > 0.0


def test_output_attentions_needs_eager(make_config, padded_batch):
    model = encoder(make_config(), "sdpa")
    with pytest.raises(ValueError, match="output_attentions=True needs attn_implementation='eager'"):
        model(*padded_batch, output_attentions=True)


def test_flex_attention_forward_equals_sdpa_on_cpu(make_config, padded_batch):
    input_ids, attention_mask = padded_batch
    model = encoder(make_config())
    with torch.no_grad():
        sdpa = model(input_ids, attention_mask).last_hidden_state
        model.config._attn_implementation = "flex_attention"
        flex = model(input_ids, attention_mask).last_hidden_state
    torch.testing.assert_close(real_tokens(flex, attention_mask), real_tokens(sdpa, attention_mask),
                               atol=1e-5, rtol=1e-5)


def test_flex_attention_training_on_cpu_says_why_it_cannot(make_config, padded_batch):
    model = encoder(make_config(), "flex_attention").train()
    with pytest.raises(RuntimeError, match="no backward pass on CPU"):
        model(*padded_batch).last_hidden_state.sum().backward()


def reference_flash_attn_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,
                                window_size=(-1, -1)):
    """flash_attn_varlen_func's documented contract: each packed sequence attends within itself, to keys in
    [i - window_size[0], i + window_size[1]] (-1 = unbounded)."""
    assert torch.equal(cu_seqlens_q, cu_seqlens_k) and dropout_p == 0.0
    outputs = []
    for start, end in zip(cu_seqlens_q[:-1].tolist(), cu_seqlens_q[1:].tolist()):
        qs, ks, vs = (t[start:end].transpose(0, 1) for t in (q, k, v))
        positions = torch.arange(end - start)
        offset = positions[None, :] - positions[:, None]  # key - query
        allowed = torch.ones(end - start, end - start, dtype=torch.bool)
        if window_size[0] >= 0:
            allowed &= offset >= -window_size[0]
        if window_size[1] >= 0:
            allowed &= offset <= window_size[1]
        outputs.append(F.scaled_dot_product_attention(qs, ks, vs, attn_mask=allowed).transpose(0, 1))
    assert max(end - start for start, end in zip(cu_seqlens_q[:-1].tolist(), cu_seqlens_q[1:].tolist())) \
        == max_seqlen_q
    return torch.cat(outputs)


def test_flash_path_unpads_and_windows_like_sdpa(make_config, padded_batch, monkeypatch):
    """The flash_attention_2 path (unpad once, cu_seqlens, window_size, repad) with a reference kernel in fp32."""
    monkeypatch.setattr(nucel_modeling, "flash_attn_varlen_func", reference_flash_attn_varlen)
    monkeypatch.setattr(nucel_modeling, "FLASH_ATTENTION_DTYPES", (torch.float32,))
    input_ids, attention_mask = padded_batch
    model = encoder(make_config())
    with torch.no_grad():
        sdpa = model(input_ids, attention_mask, output_hidden_states=True)
        model.config._attn_implementation = "flash_attention_2"
        flash = model(input_ids, attention_mask, output_hidden_states=True)
    torch.testing.assert_close(real_tokens(flash.last_hidden_state, attention_mask),
                               real_tokens(sdpa.last_hidden_state, attention_mask), atol=1e-5, rtol=1e-5)
    assert (flash.last_hidden_state[~attention_mask.bool()] == 0).all()
    for a, b in zip(flash.hidden_states, sdpa.hidden_states):
        torch.testing.assert_close(real_tokens(a, attention_mask), real_tokens(b, attention_mask),
                                   atol=1e-5, rtol=1e-5)


def test_flash_path_refuses_fp32_and_missing_package(make_config, padded_batch, monkeypatch):
    model = encoder(make_config(), "flash_attention_2")
    monkeypatch.setattr(nucel_modeling, "flash_attn_varlen_func", None)
    with pytest.raises(ImportError, match="needs the flash_attn package"):
        model(*padded_batch)
    monkeypatch.setattr(nucel_modeling, "flash_attn_varlen_func", reference_flash_attn_varlen)
    with pytest.raises(ValueError, match="needs fp16/bf16"):
        model(*padded_batch)


def test_too_long_input_is_refused(make_config):
    model = encoder(make_config(max_position_embeddings=64))
    input_ids, _ = dna_batch(batch=1, length=65)
    with pytest.raises(ValueError, match="longer than max_position_embeddings=64"):
        model(input_ids)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("implementation", ["eager", "flex_attention", "flash_attention_2"])
def test_cuda_backends_match_sdpa_in_bf16(make_config, padded_batch, implementation):
    if implementation == "flash_attention_2" and nucel_modeling.flash_attn_varlen_func is None:
        pytest.skip("flash_attn is not installed")
    input_ids, attention_mask = (t.cuda() for t in padded_batch)
    model = encoder(make_config()).cuda().to(torch.bfloat16)
    with torch.no_grad():
        sdpa = model(input_ids, attention_mask).last_hidden_state.float()
        model.config._attn_implementation = implementation
        other = model(input_ids, attention_mask).last_hidden_state.float()
    torch.testing.assert_close(real_tokens(other, attention_mask), real_tokens(sdpa, attention_mask),
                               atol=3e-2, rtol=3e-2)
