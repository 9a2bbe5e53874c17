"""Every attention backend computes the same function, and local layers see exactly their window."""

import pytest
import torch
import torch.nn.functional as F
from conftest import dna_batch

import nucel.modeling_nucel.modeling_nucel as nucel_modeling
from nucel.modeling_nucel import NucELModel


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


@pytest.mark.parametrize("implementation", ["sdpa", "flex_attention"])
def test_output_attentions_falls_back_to_eager_for_that_call(make_config, padded_batch, implementation):
    """transformers' convention: a backend that cannot return weights runs the call eagerly (with a warning)."""
    if implementation == "flex_attention" and nucel_modeling.flex_attention is None:
        pytest.skip("this PyTorch has no FlexAttention")
    model = encoder(make_config(), implementation)
    with torch.no_grad():
        fallback = model(*padded_batch, output_attentions=True)
        assert model.config._attn_implementation == implementation  # only that call ran eagerly
        model.config._attn_implementation = "eager"
        eager = model(*padded_batch, output_attentions=True)
    assert len(fallback.attentions) == model.config.num_hidden_layers
    for got, expected in zip(fallback.attentions, eager.attentions):
        torch.testing.assert_close(got, expected)
    torch.testing.assert_close(fallback.last_hidden_state, eager.last_hidden_state)


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


# ----------------------------------------------------------------------------------------- block-local attention
def dense_local_mask(key_is_real, seq_len, half_window):
    """The dense rule local layers must keep: a real key within `half_window`, or the query itself."""
    positions = torch.arange(seq_len)
    band = (positions[:, None] - positions[None, :]).abs() <= half_window
    return (key_is_real[:, None, None, :] & band) | torch.eye(seq_len, dtype=torch.bool)


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("seq_len, lengths", [
    (5, [5, 3]),  # shorter than one block (block = window = 16)
    (16, [16, 9]),  # exactly one block
    (37, [37, 20]),  # odd: the last block is partial
    (100, [100, 1]),  # one real token and 99 padded queries, most far from any real key
])
def test_block_local_equals_dense_forward_and_backward(implementation, seq_len, lengths):
    half_window, batch, heads, dim = 8, len(lengths), 2, 8
    key_is_real = torch.zeros(batch, seq_len, dtype=torch.bool)
    for row, n in enumerate(lengths):
        key_is_real[row, :n] = True
    generator = torch.Generator().manual_seed(seq_len)
    q, k, v = (torch.randn(batch, heads, seq_len, dim, generator=generator, requires_grad=True) for _ in range(3))
    upstream = torch.randn(batch, heads, seq_len, dim, generator=generator)
    attend = nucel_modeling.ATTENTION_FUNCTIONS[implementation]

    blocks = nucel_modeling.LocalBlocks.build(seq_len, half_window, key_is_real, batch, torch.device("cpu"))
    blocked, blocked_weights = nucel_modeling.block_local_attention(attend, q, k, v, blocks, 0.0, False,
                                                                    output_attentions=True)
    blocked_grads = torch.autograd.grad((blocked * upstream).sum(), (q, k, v))
    dense, dense_weights = attend(q, k, v, dense_local_mask(key_is_real, seq_len, half_window), 0.0, False)
    dense_grads = torch.autograd.grad((dense * upstream).sum(), (q, k, v))

    torch.testing.assert_close(blocked, dense, atol=1e-5, rtol=1e-5)  # padded queries included
    for mine, reference in zip(blocked_grads, dense_grads):
        torch.testing.assert_close(mine, reference, atol=1e-5, rtol=1e-5)
    if implementation == "eager":
        torch.testing.assert_close(blocked_weights, dense_weights, atol=1e-6, rtol=1e-5)
    assert blocks.mask.shape == (batch * blocks.n_blocks, 1, blocks.size, blocks.size + 2 * half_window)


def with_dense_local_masks(build):
    """`build_attention_masks` as it was before block-local attention: local layers get the dense band mask."""
    def build_dense(implementation, attention_mask, batch, seq_len, half_window, device):
        masks = build(implementation, attention_mask, batch, seq_len, half_window, device)
        key_is_real = attention_mask.bool() if attention_mask is not None else torch.ones(batch, seq_len, dtype=bool)
        masks["sliding_attention"] = dense_local_mask(key_is_real, seq_len, half_window)
        return masks
    return build_dense


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_model_with_block_local_layers_equals_dense_forward_and_backward(make_config, implementation, monkeypatch):
    input_ids, attention_mask = dna_batch(lengths=[83, 47, 9], length=83)  # odd length, heavy padding
    config = make_config(attention_dropout=0.0)

    def run():
        model = encoder(config, implementation).train()
        hidden = model(input_ids, attention_mask).last_hidden_state
        hidden[attention_mask.bool()].square().mean().backward()
        return hidden.detach(), {name: p.grad for name, p in model.named_parameters()}

    blocked, blocked_grads = run()
    monkeypatch.setattr(nucel_modeling, "build_attention_masks",
                        with_dense_local_masks(nucel_modeling.build_attention_masks))
    dense, dense_grads = run()
    torch.testing.assert_close(real_tokens(blocked, attention_mask), real_tokens(dense, attention_mask),
                               atol=1e-5, rtol=1e-5)
    for name, grad in blocked_grads.items():
        torch.testing.assert_close(grad, dense_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_no_dense_masks_on_eager_and_sdpa(make_config):
    """Global layers: no mask without padding, a (batch, 1, 1, seq) key mask with it; local layers: blocks."""
    input_ids, attention_mask = dna_batch(lengths=[300, 200], length=300)
    masks = nucel_modeling.build_attention_masks("sdpa", attention_mask, 2, 300, 8, torch.device("cpu"))
    assert masks["full_attention"].shape == (2, 1, 1, 300)
    assert isinstance(masks["sliding_attention"], nucel_modeling.LocalBlocks)
    assert masks["sliding_attention"].mask.numel() == 2 * 19 * 16 * 32  # O(seq x window), not seq^2
    unpadded = nucel_modeling.build_attention_masks("sdpa", None, 2, 300, 8, torch.device("cpu"))
    assert unpadded["full_attention"] is None
