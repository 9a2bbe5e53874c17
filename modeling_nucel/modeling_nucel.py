"""NucEL: ELECTRA-style DNA encoders on a ModernBERT backbone, single-nucleotide tokens.

Read top to bottom: rotary embeddings -> attention (four backends) -> encoder layer -> NucELModel -> heads ->
NucELForPreTraining (the ELECTRA objective in one forward). Parameter names equal transformers' ModernBERT, so a
NucEL state dict loads into `ModernBertModel` and back.

This file is also Hub remote code: it imports only torch, transformers, the standard library and
`configuration_nucel` (relative import).
"""

import os
import shutil
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
import transformers
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import (
    BaseModelOutput,
    MaskedLMOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.utils import ModelOutput, logging

from .configuration_nucel import NucELConfig

try:  # optional GPU kernel; the package never requires it
    from flash_attn import flash_attn_varlen_func
except ImportError:
    flash_attn_varlen_func = None

try:
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
except ImportError:
    create_block_mask = flex_attention = None

try:  # transformers 5.x: these initialisers skip weights already loaded from a checkpoint
    from transformers import initialization as init
except ImportError:
    init = nn.init

logger = logging.get_logger(__name__)
TRANSFORMERS_V5 = int(transformers.__version__.split(".")[0]) >= 5

# The one table of heads: (NucEL class, the Auto class that loads it, its Hub pipeline tag, transformers' own
# ModernBERT class with the same parameter names). `auto_map`, Auto registration, ModernBERT conversion and the
# model cards derive from it. AutoModelForPreTraining is the discriminator with its replaced-token head, as for
# ELECTRA in transformers (ElectraForPreTraining); the joint generator + discriminator (NucELForPreTraining) is a
# training wrapper that loads through its own class, and its embeddings are the discriminator's.
HEADS = (
    ("NucELModel", "AutoModel", "feature-extraction", "ModernBertModel"),
    ("NucELForMaskedLM", "AutoModelForMaskedLM", "fill-mask", "ModernBertForMaskedLM"),
    ("NucELForReplacedTokenDetection", "AutoModelForPreTraining", "feature-extraction", None),
    ("NucELForSequenceClassification", "AutoModelForSequenceClassification", "text-classification",
     "ModernBertForSequenceClassification"),
    ("NucELForTokenClassification", "AutoModelForTokenClassification", "token-classification",
     "ModernBertForTokenClassification"),
    ("NucELForPreTraining", None, "feature-extraction", None),
)
# Every Auto class is listed so that each loads any saved NucEL folder with trust_remote_code=True.
AUTO_MAP = {"AutoConfig": "configuration_nucel.NucELConfig",
            **{auto: f"modeling_nucel.{name}" for name, auto, _, _ in HEADS if auto}}
PIPELINE_TAGS = {name: tag for name, _, tag, _ in HEADS}
MODERNBERT_CLASSES = {name: stock for name, _, _, stock in HEADS if stock}
REMOTE_CODE_FILES = ("configuration_nucel.py", "modeling_nucel.py")


def follow_umask(folder: Union[str, os.PathLike]) -> None:
    """Give the weight files of a saved folder the mode every other file gets (0666 less the umask): transformers
    writes them through a private temporary file, mode 0600, so lab-mates sharing the folder could not read them."""
    umask = os.umask(0)
    os.umask(umask)
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if name.endswith((".safetensors", ".safetensors.index.json", ".bin")) and os.path.isfile(path) \
                and not os.path.islink(path):
            os.chmod(path, 0o666 & ~umask)


# Shape letters in the comments below: B batch, T tokens per sequence, C hidden size, nh heads,
# hs head size (C = nh * hs), N real tokens of the whole batch (flash attention runs unpadded). Local layers
# on eager / sdpa (`LocalBlocks`): hw half window, W block size (min(2 * hw, T)), nb blocks (ceil(T / W)),
# S = W + 2 * hw keys per block.

# ----------------------------------------------------------------------------------------------- rotary embeddings
def rotary_cos_sin(position_ids: torch.Tensor, head_dim: int, theta: float,
                   dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables for `position_ids` (any shape), computed in fp32 as ModernBERT does."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))  # (hs/2,)
    freqs = position_ids[..., None].float() * inv_freq.to(position_ids.device)  # (..., hs/2)
    angles = torch.cat((freqs, freqs), dim=-1)  # (..., hs): dims i and i + hs/2 share a frequency (rotate_half)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)  # (..., hs/2) each: ModernBERT pairs the halves, not interleaved dims
    return torch.cat((-second, first), dim=-1)


def apply_rotary(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor,
                 sin: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """q, k: (..., T, nh, hs); cos, sin: (..., T, hs). Rotation in fp32, result in q's dtype."""
    cos, sin = cos.unsqueeze(-2).float(), sin.unsqueeze(-2).float()  # (..., T, 1, hs): one table for every head
    q_rot = q.float() * cos + rotate_half(q.float()) * sin
    k_rot = k.float() * cos + rotate_half(k.float()) * sin
    return q_rot.to(q.dtype), k_rot.to(k.dtype)


# ----------------------------------------------------------------------------------------------- attention backends
# eager / sdpa / flex take (B, nh, T, hs) and a per-layer-type mask built once per forward by
# `build_attention_masks`; flash takes unpadded (N, nh, hs) and (cu_seqlens, max_seqlen).
# On eager / sdpa, local layers attend block by block (`LocalBlocks`), so they cost O(T x W), not O(T^2).
# A backend returns (output shaped like q, attention weights or None).
AttentionOutput = Tuple[torch.Tensor, Optional[torch.Tensor]]


def eager_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor], dropout: float,
                    training: bool) -> AttentionOutput:
    # (B, nh, T, T), or (B*nb, nh, W, S) on a local layer's blocks
    scores = torch.matmul(q, k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    return torch.matmul(F.dropout(weights, p=dropout, training=training), v), weights


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor], dropout: float,
                   training: bool) -> AttentionOutput:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout if training else 0.0), None


@dataclass
class LocalBlocks:
    """Block layout of a local layer on eager / sdpa.

    Queries are cut into `n_blocks` blocks of `size` (= the window) positions; block b attends to the
    `size + 2 * half_window` keys from `half_window` before its first query to `half_window` after its last, which
    hold every key its queries' windows reach. `mask` (B*nb, 1, W, S) keeps exactly the dense rule: a real key
    within `half_window`, or the query itself.
    """

    size: int
    half_window: int
    n_blocks: int
    seq_len: int
    mask: torch.Tensor

    @classmethod
    def build(cls, seq_len: int, half_window: int, key_is_real: Optional[torch.Tensor], batch: int,
              device: torch.device) -> "LocalBlocks":
        size = min(2 * half_window, seq_len)  # W
        n_blocks = -(-seq_len // size)  # nb = ceil(T / W)
        span = size + 2 * half_window  # S
        query = torch.arange(size, device=device)[:, None]  # (W, 1)
        key = torch.arange(span, device=device)[None, :]  # (1, S)
        band = (key >= query) & (key <= query + 2 * half_window)  # |query - key| <= half_window, block coordinates
        itself = key == query + half_window
        if key_is_real is None:
            key_is_real = torch.ones(1, seq_len, dtype=torch.bool, device=device)
        # (B or 1, hw + nb*W + hw): the positions outside the sequence that edge blocks reach are never real keys
        padded = F.pad(key_is_real, (half_window, n_blocks * size - seq_len + half_window), value=False)
        real = padded.unfold(1, span, size)  # (B or 1, nb, S): block b's keys start at padded position b*W
        mask = (band & real[:, :, None, :]) | itself  # (B or 1, nb, W, S)
        # (B*nb, 1, W, S): blocks are batch rows of the attention call, and one mask serves every head
        mask = mask.expand(batch, -1, -1, -1).reshape(batch * n_blocks, 1, size, span)
        return cls(size, half_window, n_blocks, seq_len, mask)

    def queries(self, x: torch.Tensor) -> torch.Tensor:
        """(B, nh, T, hs) -> (B*nb, nh, W, hs)."""
        batch, heads, _, dim = x.shape
        x = F.pad(x, (0, 0, 0, self.n_blocks * self.size - self.seq_len))  # (B, nh, nb*W, hs): whole blocks
        x = x.view(batch, heads, self.n_blocks, self.size, dim).transpose(1, 2)  # (B, nb, nh, W, hs)
        return x.reshape(-1, heads, self.size, dim)  # (B*nb, nh, W, hs): one block per batch row

    def keys(self, x: torch.Tensor) -> torch.Tensor:
        """(B, nh, T, hs) -> (B*nb, nh, S, hs): each block's keys, its neighbours' within hw included."""
        batch, heads, _, dim = x.shape
        span = self.size + 2 * self.half_window  # S
        # (B, nh, hw + nb*W + hw, hs): hw before position 0 so that block b's keys start at padded position b*W
        x = F.pad(x, (0, 0, self.half_window, self.n_blocks * self.size - self.seq_len + self.half_window))
        blocks = x.unfold(2, span, self.size)  # (B, nh, nb, hs, S): a view, neighbouring blocks share 2*hw keys
        return blocks.permute(0, 2, 1, 4, 3).reshape(-1, heads, span, dim)  # (B*nb, nh, S, hs), a copy

    def merge(self, out: torch.Tensor, batch: int) -> torch.Tensor:
        """(B*nb, nh, W, hs) -> (B, nh, T, hs)."""
        _, heads, _, dim = out.shape
        out = out.view(batch, self.n_blocks, heads, self.size, dim).transpose(1, 2)  # (B, nh, nb, W, hs)
        # (B, nh, nb*W, hs), then the last block's padding queries dropped
        return out.reshape(batch, heads, self.n_blocks * self.size, dim)[:, :, :self.seq_len]

    def dense_weights(self, weights: torch.Tensor, batch: int) -> torch.Tensor:
        """Block attention weights (B*nb, nh, W, S) -> the (B, nh, T, T) matrix the dense path returns (zeros
        outside the window)."""
        _, heads, size, span = weights.shape
        # Columns in the keys' padded coordinates (hw before position 0): block b's S keys start at column b*W.
        rows, cols = self.n_blocks * size, self.n_blocks * size + 2 * self.half_window
        dense = weights.new_zeros(batch, heads, rows, cols)  # (B, nh, nb*W, hw + nb*W + hw)
        # (B, nh, nb, W, S) view of the tiles on the band: the next block is W rows down and W columns right.
        diagonal_blocks = dense.as_strided((batch, heads, self.n_blocks, size, span),
                                           (heads * rows * cols, rows * cols, size * cols + size, cols, 1))
        # (B*nb, nh, W, S) -> (B, nb, nh, W, S) -> (B, nh, nb, W, S)
        diagonal_blocks.copy_(weights.view(batch, self.n_blocks, heads, size, span).transpose(1, 2))
        return dense[:, :, :self.seq_len, self.half_window:self.half_window + self.seq_len]  # (B, nh, T, T)


def block_local_attention(attend: Callable[..., AttentionOutput], q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                          blocks: LocalBlocks, dropout: float, training: bool,
                          output_attentions: bool) -> AttentionOutput:
    """q, k, v: (B, nh, T, hs) -> ((B, nh, T, hs), (B, nh, T, T) weights when asked for and returned by `attend`)."""
    # (B*nb, nh, W, hs) queries against (B*nb, nh, S, hs) keys and values: one dense call over every block
    out, weights = attend(blocks.queries(q), blocks.keys(k), blocks.keys(v), blocks.mask, dropout, training)
    batch = q.shape[0]
    weights = blocks.dense_weights(weights, batch) if output_attentions and weights is not None else None
    return blocks.merge(out, batch), weights


_compiled_flex_attention = None


def flex_attention_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_mask: Any, dropout: float,
                           training: bool) -> AttentionOutput:
    global _compiled_flex_attention
    if flex_attention is None:
        raise ImportError("attn_implementation='flex_attention' needs torch>=2.5 (torch.nn.attention.flex_attention)")
    if dropout > 0 and training:
        raise ValueError("attn_implementation='flex_attention' does not support attention_dropout > 0 in training")
    if q.device.type != "cuda":
        if torch.is_grad_enabled() and q.requires_grad:
            raise RuntimeError(
                "attn_implementation='flex_attention' has no backward pass on CPU (PyTorch limitation); "
                "train on CPU with attn_implementation='sdpa', or use flex_attention on a GPU"
            )
        return flex_attention(q, k, v, block_mask=block_mask), None
    if _compiled_flex_attention is None:  # the eager flex kernel materialises the score matrix; compile fuses it
        _compiled_flex_attention = torch.compile(flex_attention, dynamic=False)
    return _compiled_flex_attention(q, k, v, block_mask=block_mask), None


FLASH_ATTENTION_DTYPES = (torch.float16, torch.bfloat16)


def flash_attention_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, varlen: Tuple[torch.Tensor, int],
                            half_window: Optional[int], dropout: float, training: bool) -> torch.Tensor:
    """q, k, v: (N, nh, hs), the batch's real tokens back to back; varlen: ((B + 1,) cu_seqlens, max_seqlen)."""
    if flash_attn_varlen_func is None:
        raise ImportError("attn_implementation='flash_attention_2' needs the flash_attn package "
                          "(pip install nucel[gpu])")
    if q.dtype not in FLASH_ATTENTION_DTYPES:
        raise ValueError(f"attn_implementation='flash_attention_2' needs fp16/bf16 weights on CUDA, got {q.dtype}")
    cu_seqlens, max_seqlen = varlen
    window = (half_window, half_window) if half_window is not None else (-1, -1)
    return flash_attn_varlen_func(q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen,
                                  dropout_p=dropout if training else 0.0, window_size=window)


ATTENTION_FUNCTIONS = {"eager": eager_attention, "sdpa": sdpa_attention, "flex_attention": flex_attention_forward}


def attention_implementation(config: NucELConfig) -> str:
    implementation = getattr(config, "_attn_implementation", None) or "sdpa"
    if implementation not in ("eager", "sdpa", "flex_attention", "flash_attention_2"):
        raise ValueError(f"NucEL attn_implementation={implementation!r}: expected eager, sdpa, flex_attention "
                         "or flash_attention_2")
    return implementation


def build_attention_masks(implementation: str, attention_mask: Optional[torch.Tensor], batch: int, seq_len: int,
                          half_window: int, device: torch.device) -> Dict[str, Any]:
    """Masks for the global and local layers: {"full_attention": m, "sliding_attention": m}.

    A key is visible when it is a real token (and, on local layers, within `half_window` positions). Local-layer
    queries also see themselves, so a padded query far from any real token gets no empty row (no NaN); on global
    layers every query sees every real token, so a key mask of (batch, 1, 1, seq) is enough. Real tokens never
    see padding, so their outputs do not depend on how much padding follows them.
    """
    has_padding = attention_mask is not None and not bool(attention_mask.all())
    key_is_real = attention_mask.bool() if has_padding else None

    if implementation == "flex_attention":
        def block_mask(half):
            def mask_mod(b, h, q_idx, kv_idx):
                keep = key_is_real[b, kv_idx] if key_is_real is not None else q_idx >= 0
                if half is not None:
                    keep = keep & ((q_idx - kv_idx).abs() <= half)
                return keep | (q_idx == kv_idx)

            batch = key_is_real.shape[0] if key_is_real is not None else None
            return create_block_mask(mask_mod, batch, None, seq_len, seq_len, device=device)

        return {"full_attention": block_mask(None), "sliding_attention": block_mask(half_window)}

    # (B, 1, 1, T): broadcast over heads and queries. None: the fused SDPA kernels, no mask
    full = key_is_real[:, None, None, :] if has_padding else None
    if seq_len <= half_window + 1:  # the window spans the whole sequence: a local layer is a global one
        return {"full_attention": full, "sliding_attention": full}
    return {"full_attention": full,
            "sliding_attention": LocalBlocks.build(seq_len, half_window, key_is_real, batch, device)}


def linear(in_features: int, out_features: int, init_role: str, bias: bool = False) -> nn.Linear:
    """nn.Linear tagged with its initialisation rule: "in" (inputs), "out" (residual outputs, scaled by depth) or
    "final_out" (classifiers)."""
    layer = nn.Linear(in_features, out_features, bias=bias)
    layer.init_role = init_role
    return layer


class NucELAttention(nn.Module):
    """Multi-head self-attention with RoPE; local layers see a centred window of `local_attention` tokens."""

    def __init__(self, config: NucELConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.is_local = config.layer_types[layer_idx] == "sliding_attention"
        self.half_window = config.local_attention // 2 if self.is_local else None
        self.is_causal = False
        self.Wqkv = linear(config.hidden_size, 3 * config.hidden_size, "in")
        self.Wo = linear(config.hidden_size, config.hidden_size, "out")
        self.out_drop = nn.Dropout(config.attention_dropout) if config.attention_dropout > 0 else nn.Identity()

    def forward(self, hidden_states: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: Any, implementation: str,
                output_attentions: bool = False) -> AttentionOutput:
        """hidden_states: (B, T, C), or (N, C) on flash attention; `mask`: this layer type's `masks` entry."""
        token_shape = hidden_states.shape[:-1]  # (B, T), or (N,) when unpadded for flash attention
        qkv = self.Wqkv(hidden_states).view(*token_shape, 3, self.num_heads, self.head_dim)  # (..., 3, nh, hs)
        q, k, v = qkv.unbind(dim=-3)  # (..., nh, hs) each
        q, k = apply_rotary(q, k, cos, sin)
        dropout = self.config.attention_dropout

        if implementation == "flash_attention_2":
            out, weights = flash_attention_forward(q, k, v, mask, self.half_window, dropout, self.training), None
        else:
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs): the kernels want heads as batch
            attend = ATTENTION_FUNCTIONS[implementation]
            if isinstance(mask, LocalBlocks):
                out, weights = block_local_attention(attend, q, k, v, mask, dropout, self.training, output_attentions)
            else:
                out, weights = attend(q, k, v, mask, dropout, self.training)
            out = out.transpose(1, 2)  # (B, T, nh, hs)
        out = out.reshape(*token_shape, -1)  # (B, T, C) or (N, C): heads side by side again for Wo
        return self.out_drop(self.Wo(out)), weights


# ----------------------------------------------------------------------------------------------- backbone blocks
class NucELEmbeddings(nn.Module):
    def __init__(self, config: NucELConfig):
        super().__init__()
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=False)
        self.drop = nn.Dropout(config.embedding_dropout)

    def forward(self, input_ids: Optional[torch.Tensor] = None,
                inputs_embeds: Optional[torch.Tensor] = None) -> torch.Tensor:
        embeddings = inputs_embeds if inputs_embeds is not None else self.tok_embeddings(input_ids)
        return self.drop(self.norm(embeddings))


class NucELMLP(nn.Module):
    """GeGLU: Wo(act(x Wi_in) * (x Wi_gate))."""

    def __init__(self, config: NucELConfig):
        super().__init__()
        self.config = config
        self.Wi = linear(config.hidden_size, 2 * config.intermediate_size, "in")
        self.act = ACT2FN[config.hidden_activation]
        self.drop = nn.Dropout(config.mlp_dropout)
        self.Wo = linear(config.intermediate_size, config.hidden_size, "out")

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        activation, gate = self.Wi(hidden_states).chunk(2, dim=-1)
        return self.Wo(self.drop(self.act(activation) * gate))


class NucELEncoderLayer(nn.Module):
    """Pre-norm block. Layer 0 has no attention norm: the embeddings end with one."""

    def __init__(self, config: NucELConfig, layer_idx: int):
        super().__init__()
        self.attention_type = config.layer_types[layer_idx]
        if layer_idx == 0:
            self.attn_norm = nn.Identity()
        else:
            self.attn_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=False)
        self.attn = NucELAttention(config, layer_idx)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=False)
        self.mlp = NucELMLP(config)

    def forward(self, hidden_states: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: Any, implementation: str,
                output_attentions: bool = False) -> AttentionOutput:
        attn_output, weights = self.attn(self.attn_norm(hidden_states), cos, sin, mask, implementation,
                                         output_attentions)
        hidden_states = hidden_states + attn_output
        hidden_states = hidden_states + self.mlp(self.mlp_norm(hidden_states))
        return hidden_states, weights


class NucELPredictionHead(nn.Module):
    def __init__(self, config: NucELConfig):
        super().__init__()
        self.config = config
        self.dense = linear(config.hidden_size, config.hidden_size, "out")
        self.act = ACT2FN[config.classifier_activation]
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.norm(self.act(self.dense(hidden_states)))


# ----------------------------------------------------------------------------------------------- base class
class NucELPreTrainedModel(PreTrainedModel):
    config_class = NucELConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["NucELEmbeddings", "NucELEncoderLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True  # transformers 5.x name
    _supports_flash_attn_2 = True  # transformers 4.x name
    _supports_flex_attn = True
    # A discriminator export carries its replaced-token head; heads that do not use it load without a report.
    _keys_to_ignore_on_load_unexpected = [r"^discriminator_head\.", r"^discriminator_classifier\."]

    @classmethod
    def _can_set_attn_implementation(cls) -> bool:
        # Attention is dispatched at every forward from config._attn_implementation, so switching is always safe.
        return True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """ModernBERT's scheme: truncated normals, residual outputs scaled by depth, LayerNorm weights at one.

        Rules sit on the leaf modules (each Linear carries its `init_role`): transformers 5.x initialises custom-code
        modules only where they hold parameters themselves, so a rule on a parent module would never run.
        """
        config = self.config
        cutoff = config.initializer_cutoff_factor or 3.0
        std = {"in": config.initializer_range,
               "out": config.initializer_range / (2.0 * config.num_hidden_layers) ** 0.5,
               "final_out": config.hidden_size ** -0.5}[getattr(module, "init_role", "in")]
        if isinstance(module, (nn.Linear, nn.Embedding)):
            init.trunc_normal_(module.weight, mean=0.0, std=std, a=-cutoff * std, b=cutoff * std)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)

    def save_pretrained(self, save_directory: Union[str, os.PathLike], *args: Any, **kwargs: Any) -> None:
        """Save weights + config with an `auto_map` for every head, and copy the remote-code files beside them."""
        self.config.auto_map = dict(AUTO_MAP)
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            here = os.path.dirname(os.path.abspath(__file__))
            for name in REMOTE_CODE_FILES:
                shutil.copyfile(os.path.join(here, name), os.path.join(save_directory, name))
            follow_umask(save_directory)

    @classmethod
    def from_modernbert(cls, model_or_path: Union[str, os.PathLike, PreTrainedModel],
                        **config_overrides: Any) -> "NucELPreTrainedModel":
        """Import a stock transformers ModernBERT (model instance or folder/Hub id) with identical outputs.

        `config_overrides` set NucEL-only fields the stock config lacks (e.g. `mask_token_id`,
        `nucleotide_token_ids` for a 27-token vocabulary).
        """
        stock_class = getattr(transformers, MODERNBERT_CLASSES.get(cls.__name__, ""), None)
        if stock_class is None:
            raise TypeError(f"{cls.__name__}.from_modernbert: ModernBERT has no counterpart of this class")
        stock = model_or_path
        if isinstance(model_or_path, (str, os.PathLike)):
            stock = stock_class.from_pretrained(model_or_path, attn_implementation="sdpa")
        if cls is NucELModel and isinstance(getattr(stock, "model", None), transformers.ModernBertModel):
            stock = stock.model  # a backbone out of any ModernBERT head
        if not isinstance(stock, stock_class):
            raise TypeError(f"{cls.__name__}.from_modernbert: expected a {stock_class.__name__} "
                            f"or its folder, got {type(stock).__name__}")
        config = NucELConfig.from_modernbert_config(stock.config, **config_overrides)
        model = cls(config)
        state = {k: v for k, v in stock.state_dict().items() if "rotary_emb" not in k}
        model.load_state_dict(state, strict=True)
        return model.to(next(stock.parameters()).dtype)

    def to_modernbert(self) -> PreTrainedModel:
        """This model as transformers' own ModernBERT class: the same weights, equal outputs, loadable without
        remote code. NucEL-only config fields ride along as extra config keys that ModernBERT ignores."""
        stock_class = getattr(transformers, MODERNBERT_CLASSES.get(type(self).__name__, ""), None)
        if stock_class is None:
            raise TypeError(f"{type(self).__name__}.to_modernbert: ModernBERT has no counterpart of this class")
        stock = stock_class(self.config.to_modernbert_config(keep_nucel_fields=True))
        missing, unexpected = stock.load_state_dict(self.state_dict(), strict=False)
        missing = [key for key in missing if "rotary_emb" not in key]
        if missing or unexpected:  # the parameter names are the same by construction: this is a bug
            raise RuntimeError(f"to_modernbert: {len(missing)} missing / {len(unexpected)} unexpected weights, "
                               f"e.g. {(missing + unexpected)[0]}")
        return stock.to(self.dtype).train(self.training)


def _return(return_dict: Optional[bool], config: NucELConfig,
            output: ModelOutput) -> Union[Tuple[torch.Tensor, ...], ModelOutput]:
    use_dict = return_dict if return_dict is not None else getattr(config, "return_dict", True)
    return output if use_dict else output.to_tuple()


# ----------------------------------------------------------------------------------------------- the encoder
def check_inputs(input_ids: Optional[torch.Tensor], attention_mask: Optional[torch.Tensor], batch: int, seq_len: int,
                 vocab_size: int) -> None:
    """One clear error instead of an index error (CPU), a device assert (CUDA) or NaN outputs (an empty row)."""
    if input_ids is not None:
        outside = (input_ids < 0) | (input_ids >= vocab_size)
        if bool(outside.any()):
            bad = int(input_ids[outside][0])
            raise ValueError(f"NucELModel.forward: input_ids holds token id {bad}, outside the vocabulary of "
                             f"{vocab_size} (ids 0..{vocab_size - 1})")
    if attention_mask is not None:
        if tuple(attention_mask.shape) != (batch, seq_len):
            raise ValueError(f"NucELModel.forward: attention_mask shape {tuple(attention_mask.shape)} != "
                             f"(batch, sequence) = {(batch, seq_len)}")
        empty = ~attention_mask.bool().any(-1)
        if bool(empty.any()):
            rows = empty.nonzero().flatten().tolist()
            raise ValueError(f"NucELModel.forward: attention_mask row(s) {rows[:10]} are all zeros; every sequence "
                             "needs at least one real token (an empty row has no defined output)")


class NucELModel(NucELPreTrainedModel):
    """The ModernBERT encoder: embeddings -> layers (global every n-th, local otherwise) -> final norm."""

    def __init__(self, config: NucELConfig):
        super().__init__(config)
        self.config = config
        self.embeddings = NucELEmbeddings(config)
        self.layers = nn.ModuleList([NucELEncoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=False)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.tok_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.tok_embeddings = value

    def forward(self, input_ids: Optional[torch.LongTensor] = None, attention_mask: Optional[torch.Tensor] = None,
                position_ids: Optional[torch.LongTensor] = None, inputs_embeds: Optional[torch.FloatTensor] = None,
                output_attentions: Optional[bool] = None, output_hidden_states: Optional[bool] = None,
                return_dict: Optional[bool] = None) -> Union[Tuple[torch.Tensor, ...], BaseModelOutput]:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("NucELModel.forward: pass exactly one of input_ids or inputs_embeds")
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (output_hidden_states if output_hidden_states is not None
                                else self.config.output_hidden_states)
        batch, seq_len = (input_ids if input_ids is not None else inputs_embeds).shape[:2]
        if seq_len > self.config.max_position_embeddings:
            raise ValueError(f"NucELModel.forward: sequence of {seq_len} tokens is longer than "
                             f"max_position_embeddings={self.config.max_position_embeddings}")
        device = (input_ids if input_ids is not None else inputs_embeds).device
        check_inputs(input_ids, attention_mask, batch, seq_len, self.config.vocab_size)
        if position_ids is None:
            position_ids = torch.arange(seq_len, device=device).unsqueeze(0)

        hidden_states = self.embeddings(input_ids=input_ids, inputs_embeds=inputs_embeds)
        implementation = attention_implementation(self.config)
        if output_attentions and implementation != "eager":
            # Only eager attention materialises the weights; the call falls back to it, as transformers' models do.
            logger.warning_once(f"NucEL: attn_implementation={implementation!r} cannot return attention weights; "
                                "output_attentions=True runs this call with eager attention")
            implementation = "eager"
        unpad_indices = None
        if implementation == "flash_attention_2":
            # Unpad once: every layer runs on real tokens only, as (N, C).
            real = attention_mask.bool() if attention_mask is not None else torch.ones(batch, seq_len, dtype=torch.bool,
                                                                                      device=device)
            seqlens = real.sum(-1, dtype=torch.int32)  # (B,)
            unpad_indices = real.flatten().nonzero().flatten()  # (N,): each real token's index into the B*T grid
            cu_seqlens = F.pad(torch.cumsum(seqlens, 0, dtype=torch.int32), (1, 0))  # (B + 1,): sequence offsets
            hidden_states = hidden_states.reshape(batch * seq_len, -1)[unpad_indices]  # (N, C)
            # (N,): a token keeps the position it had in its padded row, so RoPE sees the same positions
            position_ids = position_ids.expand(batch, seq_len).reshape(-1)[unpad_indices]
            varlen = (cu_seqlens, int(seqlens.max()))
            masks = {"full_attention": varlen, "sliding_attention": varlen}
        else:
            masks = build_attention_masks(implementation, attention_mask, batch, seq_len,
                                          self.config.local_attention // 2, device)

        head_dim = self.config.hidden_size // self.config.num_attention_heads
        rotary = {"full_attention": rotary_cos_sin(position_ids, head_dim, self.config.global_rope_theta,
                                                   hidden_states.dtype),
                  "sliding_attention": rotary_cos_sin(position_ids, head_dim, self.config.local_rope_theta,
                                                      hidden_states.dtype)}

        def repad(states: torch.Tensor) -> torch.Tensor:
            """(N, C) -> (B, T, C) with zeros at padding; (B, T, C) unchanged."""
            if unpad_indices is None:
                return states
            padded = states.new_zeros(batch * seq_len, states.shape[-1])  # (B*T, C)
            return padded.index_copy(0, unpad_indices, states).view(batch, seq_len, -1)

        all_hidden_states = (repad(hidden_states),) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layers:
            cos, sin = rotary[layer.attention_type]
            mask = masks[layer.attention_type]
            if self.gradient_checkpointing and self.training:
                hidden_states, weights = self._gradient_checkpointing_func(
                    layer.__call__, hidden_states, cos, sin, mask, implementation, output_attentions)
            else:
                hidden_states, weights = layer(hidden_states, cos, sin, mask, implementation, output_attentions)
            if output_hidden_states:
                all_hidden_states += (repad(hidden_states),)
            if output_attentions:
                all_attentions += (weights,)

        hidden_states = repad(self.final_norm(hidden_states))
        output = BaseModelOutput(last_hidden_state=hidden_states, hidden_states=all_hidden_states,
                                 attentions=all_attentions)
        return _return(return_dict, self.config, output)


# ----------------------------------------------------------------------------------------------- heads
class NucELForMaskedLM(NucELPreTrainedModel):
    """Masked-nucleotide prediction (the ELECTRA generator); the decoder is tied to the token embeddings."""

    _tied_weights_keys = (
        {"decoder.weight": "model.embeddings.tok_embeddings.weight"} if TRANSFORMERS_V5 else ["decoder.weight"]
    )

    def __init__(self, config: NucELConfig):
        super().__init__(config)
        self.model = NucELModel(config)
        self.head = NucELPredictionHead(config)
        self.decoder = linear(config.hidden_size, config.vocab_size, "out", bias=config.decoder_bias)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.decoder = new_embeddings

    def forward(self, input_ids: Optional[torch.LongTensor] = None, attention_mask: Optional[torch.Tensor] = None,
                position_ids: Optional[torch.LongTensor] = None, inputs_embeds: Optional[torch.FloatTensor] = None,
                labels: Optional[torch.LongTensor] = None, output_attentions: Optional[bool] = None,
                output_hidden_states: Optional[bool] = None, return_dict: Optional[bool] = None,
                loss_weight: Optional[torch.FloatTensor] = None,
                ) -> Union[Tuple[torch.Tensor, ...], MaskedLMOutput]:
        """`loss_weight` (shaped like `labels`, optional): the loss is the weighted mean of the per-position
        cross-entropy over the labelled positions, sum(w x ce) / sum(w) (pretraining's repeat_weight)."""
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                             output_hidden_states=output_hidden_states, return_dict=True)
        hidden_states = outputs.last_hidden_state
        if self.config.sparse_prediction and labels is not None:
            # Logits only where there is something to predict (the masked ~15%).
            keep = labels.reshape(-1) != -100
            hidden_states = hidden_states.reshape(-1, hidden_states.shape[-1])[keep]
            labels = labels.reshape(-1)[keep]
            loss_weight = loss_weight.reshape(-1)[keep] if loss_weight is not None else None
        logits = self.decoder(self.head(hidden_states))
        loss = None
        if labels is not None and loss_weight is None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                                   ignore_index=-100)
        elif labels is not None:
            weight = loss_weight.reshape(-1).float() * (labels.reshape(-1) != -100)
            per_position = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                                           ignore_index=-100, reduction="none")
            loss = (per_position * weight).sum() / weight.sum().clamp_min(1e-12)
        output = MaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                attentions=outputs.attentions)
        return _return(return_dict, self.config, output)


def classification_loss(config: NucELConfig, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """ModernBERT's problem-type rules: regression (MSE), single-label (CE), multi-label (BCE)."""
    num_labels = logits.shape[-1]
    if config.problem_type is None:
        if num_labels == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    if config.problem_type == "regression":
        return F.mse_loss(logits.squeeze(-1).float(), labels.float().reshape(logits.shape[:-1])) if num_labels == 1 \
            else F.mse_loss(logits.float(), labels.float())
    if config.problem_type == "single_label_classification":
        return F.cross_entropy(logits.reshape(-1, num_labels).float(), labels.reshape(-1))
    if config.problem_type == "multi_label_classification":
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
    raise ValueError(f"NucELConfig.problem_type={config.problem_type!r}: expected regression, "
                     "single_label_classification or multi_label_classification")


class NucELForSequenceClassification(NucELPreTrainedModel):
    """Pooled ([CLS] or mean over real tokens) -> head -> dropout -> linear."""

    def __init__(self, config: NucELConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = NucELModel(config)
        self.head = NucELPredictionHead(config)
        self.drop = nn.Dropout(config.classifier_dropout)
        self.classifier = linear(config.hidden_size, config.num_labels, "final_out", bias=True)
        self.post_init()

    def forward(self, input_ids: Optional[torch.LongTensor] = None, attention_mask: Optional[torch.Tensor] = None,
                position_ids: Optional[torch.LongTensor] = None, inputs_embeds: Optional[torch.FloatTensor] = None,
                labels: Optional[torch.Tensor] = None, output_attentions: Optional[bool] = None,
                output_hidden_states: Optional[bool] = None, return_dict: Optional[bool] = None,
                ) -> Union[Tuple[torch.Tensor, ...], SequenceClassifierOutput]:
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                             output_hidden_states=output_hidden_states, return_dict=True)
        hidden_states = outputs.last_hidden_state
        if self.config.classifier_pooling == "cls":
            pooled = hidden_states[:, 0]
        else:
            real = (attention_mask if attention_mask is not None
                    else torch.ones(hidden_states.shape[:2], device=hidden_states.device)).to(hidden_states.dtype)
            pooled = (hidden_states * real.unsqueeze(-1)).sum(1) / real.sum(1, keepdim=True)
        logits = self.classifier(self.drop(self.head(pooled)))
        loss = classification_loss(self.config, logits, labels) if labels is not None else None
        output = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                          attentions=outputs.attentions)
        return _return(return_dict, self.config, output)


class NucELForTokenClassification(NucELPreTrainedModel):
    """Per-nucleotide labels (-100 = ignored position)."""

    def __init__(self, config: NucELConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = NucELModel(config)
        self.head = NucELPredictionHead(config)
        self.drop = nn.Dropout(config.classifier_dropout)
        self.classifier = linear(config.hidden_size, config.num_labels, "final_out", bias=True)
        self.post_init()

    def forward(self, input_ids: Optional[torch.LongTensor] = None, attention_mask: Optional[torch.Tensor] = None,
                position_ids: Optional[torch.LongTensor] = None, inputs_embeds: Optional[torch.FloatTensor] = None,
                labels: Optional[torch.LongTensor] = None, output_attentions: Optional[bool] = None,
                output_hidden_states: Optional[bool] = None, return_dict: Optional[bool] = None,
                ) -> Union[Tuple[torch.Tensor, ...], TokenClassifierOutput]:
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                             output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(self.drop(self.head(outputs.last_hidden_state)))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, self.num_labels).float(), labels.reshape(-1), ignore_index=-100)
        output = TokenClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                       attentions=outputs.attentions)
        return _return(return_dict, self.config, output)


# ----------------------------------------------------------------------------------------------- ELECTRA
@dataclass
class NucELReplacedTokenDetectionOutput(ModelOutput):
    """
    loss: binary cross-entropy over the positions whose label is not -100 (when labels are given).
    logits: (batch, seq) replaced-token logits, positive = "this base looks replaced".
    last_hidden_state: (batch, seq, hidden) the backbone's output (what `AutoModel` returns), for embeddings.
    """

    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    last_hidden_state: Optional[torch.FloatTensor] = None
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


def replaced_token_head(config: NucELConfig) -> nn.Module:
    """The layers between the discriminator's final states and its one-logit classifier (`replaced_token_head`)."""
    return NucELPredictionHead(config) if config.replaced_token_head == "prediction" else nn.Identity()


def replaced_token_logits(hidden_states: torch.Tensor, head: nn.Module, classifier: nn.Module) -> torch.Tensor:
    """ELECTRA's detection head over the discriminator's states: (batch, seq) logits, positive = replaced."""
    return classifier(head(hidden_states)).squeeze(-1)


class NucELForReplacedTokenDetection(NucELPreTrainedModel):
    """The ELECTRA discriminator with its replaced-token-detection head (transformers' ElectraForPreTraining).

    Weights are `model.*` (the backbone: `AutoModel` loads the same folder), `discriminator_head.*` and
    `discriminator_classifier.*` (the names in NucELForPreTraining, so fine-tuning heads never pick them up).
    `labels`: 1.0 replaced, 0.0 original, -100 not scored.
    """

    def __init__(self, config: NucELConfig):
        super().__init__(config)
        self.model = NucELModel(config)
        self.discriminator_head = replaced_token_head(config)
        self.discriminator_classifier = linear(config.hidden_size, 1, "final_out", bias=True)
        self.post_init()

    def forward(self, input_ids: Optional[torch.LongTensor] = None, attention_mask: Optional[torch.Tensor] = None,
                position_ids: Optional[torch.LongTensor] = None, inputs_embeds: Optional[torch.FloatTensor] = None,
                labels: Optional[torch.Tensor] = None, output_attentions: Optional[bool] = None,
                output_hidden_states: Optional[bool] = None, return_dict: Optional[bool] = None,
                ) -> Union[Tuple[torch.Tensor, ...], NucELReplacedTokenDetectionOutput]:
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                             output_hidden_states=output_hidden_states, return_dict=True)
        hidden = outputs.last_hidden_state
        logits = replaced_token_logits(hidden, self.discriminator_head, self.discriminator_classifier)
        loss = None
        if labels is not None:
            scored = labels != -100
            loss = F.binary_cross_entropy_with_logits(logits[scored].float(), labels[scored].float())
        output = NucELReplacedTokenDetectionOutput(loss=loss, logits=logits, last_hidden_state=hidden,
                                                   hidden_states=outputs.hidden_states, attentions=outputs.attentions)
        return _return(return_dict, self.config, output)


@dataclass
class NucELForPreTrainingOutput(ModelOutput):
    """
    loss: generator_loss + discriminator_weight * discriminator_loss.
    generator_loss: cross-entropy of the generator at the masked positions.
    discriminator_loss: binary cross-entropy of replaced-token detection over every scored position.
    logits: (batch, seq) discriminator logits, positive = "replaced".
    discriminator_labels: (batch, seq) 1.0 replaced, 0.0 original, -100.0 not scored (padding, special tokens).
    generator_logits: (n_masked, vocab) generator logits at the masked positions, in row-major order.
    replaced_input_ids: (batch, seq) the sequence the discriminator saw.
    hidden_states, attentions: the discriminator's, when asked for.
    """

    loss: Optional[torch.FloatTensor] = None
    generator_loss: Optional[torch.FloatTensor] = None
    discriminator_loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    discriminator_labels: Optional[torch.FloatTensor] = None
    generator_logits: Optional[torch.FloatTensor] = None
    replaced_input_ids: Optional[torch.LongTensor] = None
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


class NucELForPreTraining(NucELPreTrainedModel):
    """ELECTRA: a small generator fills the masked nucleotides, the discriminator labels every position.

    `forward(input_ids, attention_mask, labels)` takes already-masked inputs and MLM-convention labels
    (the original id at each masked position, -100 elsewhere), so the original sequence is
    `where(labels != -100, labels, input_ids)`. Without labels it only runs replaced-token detection.
    """

    base_model_prefix = "discriminator"
    # transformers 5.x collects the generator's own tied keys; 4.x needs them named here.
    _tied_weights_keys = None if TRANSFORMERS_V5 else ["generator.decoder.weight"]

    def __init__(self, config: NucELConfig):
        super().__init__(config)
        self.generator = NucELForMaskedLM(config.generator_config())
        self.discriminator = NucELModel(config)
        self.discriminator_head = replaced_token_head(config)
        self.discriminator_classifier = linear(config.hidden_size, 1, "final_out", bias=True)
        self.embedding_projection = None
        if config.share_embeddings:
            # The generator reads the discriminator's table through a projection; its own table is unused
            # (frozen, so DDP sees no parameter without a gradient) until export writes the projected table into it.
            self.embedding_projection = linear(config.hidden_size, config.generator_hidden_size, "in")
            self.generator.model.embeddings.tok_embeddings.weight.requires_grad_(False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.discriminator.embeddings.tok_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.discriminator.embeddings.tok_embeddings = value

    def get_output_embeddings(self) -> None:
        return None  # the generator ties its own decoder

    def tie_weights(self, *args, **kwargs):
        super().tie_weights(*args, **kwargs)
        if not TRANSFORMERS_V5:  # 4.x ties only the outer model's embeddings after loading
            self.generator.tie_weights()

    def shared_generator_embeddings(self) -> torch.Tensor:
        """(vocab, generator_hidden) table the generator uses when `share_embeddings` is on."""
        return self.embedding_projection(self.discriminator.embeddings.tok_embeddings.weight)

    def generator_logits(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor],
                         positions: torch.Tensor) -> torch.Tensor:
        """Generator logits at the boolean `positions` only: (n_positions, vocab)."""
        generator = self.generator
        if self.embedding_projection is None:
            hidden = generator.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return generator.decoder(generator.head(hidden[positions]))
        table = self.shared_generator_embeddings()
        embeds = F.embedding(input_ids, table, padding_idx=self.config.pad_token_id)
        hidden = generator.model(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
        return F.linear(generator.head(hidden[positions]), table, generator.decoder.bias)

    def detect_replaced(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Discriminator logits (batch, seq): positive means "this token was replaced"."""
        return self.discriminate(input_ids=input_ids, attention_mask=attention_mask)[0]

    def discriminate(self, **backbone_inputs: Any) -> Tuple[torch.Tensor, BaseModelOutput]:
        """(replaced-token logits, the discriminator's BaseModelOutput) for the backbone's keyword inputs."""
        outputs = self.discriminator(**backbone_inputs, return_dict=True)
        return replaced_token_logits(outputs.last_hidden_state, self.discriminator_head,
                                     self.discriminator_classifier), outputs

    def forward(self, input_ids: Optional[torch.LongTensor] = None, attention_mask: Optional[torch.Tensor] = None,
                labels: Optional[torch.LongTensor] = None, position_ids: Optional[torch.LongTensor] = None,
                inputs_embeds: Optional[torch.FloatTensor] = None, output_attentions: Optional[bool] = None,
                output_hidden_states: Optional[bool] = None, return_dict: Optional[bool] = None,
                loss_weight: Optional[torch.FloatTensor] = None,
                ) -> Union[Tuple[torch.Tensor, ...], NucELForPreTrainingOutput]:
        """With `labels` (MLM convention, over masked `input_ids`): the joint ELECTRA loss. Without: replaced-token
        detection of the inputs as given (ids or `inputs_embeds`), as `ElectraForPreTraining`. `hidden_states` and
        `attentions` are always the discriminator's. `loss_weight` (shaped like `input_ids`, optional): both losses
        become weighted means, sum(w x loss) / sum(w), over the masked (generator) and the scored (discriminator)
        positions (pretraining's repeat_weight)."""
        views = {"position_ids": position_ids, "output_attentions": output_attentions,
                 "output_hidden_states": output_hidden_states}
        if labels is None:
            logits, outputs = self.discriminate(input_ids=input_ids, inputs_embeds=inputs_embeds,
                                                attention_mask=attention_mask, **views)
            output = NucELForPreTrainingOutput(logits=logits, hidden_states=outputs.hidden_states,
                                               attentions=outputs.attentions)
            return _return(return_dict, self.config, output)
        if input_ids is None:
            raise ValueError("NucELForPreTraining.forward: labels need input_ids (the generator samples replacement "
                             "token ids); inputs_embeds serve replaced-token detection only")
        if labels.shape != input_ids.shape:
            raise ValueError(f"NucELForPreTraining.forward: labels shape {tuple(labels.shape)} != input_ids shape "
                             f"{tuple(input_ids.shape)}")
        masked = labels != -100
        original = torch.where(masked, labels, input_ids)

        # 1. Generator: MLM loss at the masked positions.
        generator_logits = self.generator_logits(input_ids, attention_mask, masked)
        if loss_weight is None:
            n_masked = masked.sum().clamp_min(1)
            generator_loss = F.cross_entropy(generator_logits.float(), labels[masked], reduction="sum") / n_masked
        else:
            weight = loss_weight[masked].float()
            generator_loss = (F.cross_entropy(generator_logits.float(), labels[masked], reduction="none")
                              * weight).sum() / weight.sum().clamp_min(1e-12)

        # 2. Sample replacements among A/C/G/T (Gumbel-max); no gradient flows through the discrete sample.
        with torch.no_grad():
            nucleotides = torch.tensor(self.config.nucleotide_token_ids, device=input_ids.device)
            scores = generator_logits[:, nucleotides].float() / self.config.generator_temperature
            gumbel = -torch.log(-torch.log(torch.rand_like(scores).clamp(1e-20, 1.0)))
            sampled = nucleotides[(scores + gumbel).argmax(-1)]
            replaced_input_ids = original.masked_scatter(masked, sampled)
            # A sample equal to the original counts as original; padding and special tokens are never scored.
            scored = ~torch.isin(original, torch.tensor(self.config.special_token_ids, device=input_ids.device))
            if attention_mask is not None:
                scored &= attention_mask.bool()
            is_replaced = (replaced_input_ids != original).float()

        # 3. Discriminator: replaced-token detection at every scored position.
        logits, outputs = self.discriminate(input_ids=replaced_input_ids, attention_mask=attention_mask, **views)
        if loss_weight is None:
            discriminator_loss = F.binary_cross_entropy_with_logits(
                logits.float(), is_replaced, weight=scored.float(), reduction="sum") / scored.sum().clamp_min(1)
        else:
            weight = scored.float() * loss_weight.float()
            discriminator_loss = F.binary_cross_entropy_with_logits(
                logits.float(), is_replaced, weight=weight, reduction="sum") / weight.sum().clamp_min(1e-12)

        loss = generator_loss + self.config.discriminator_weight * discriminator_loss
        output = NucELForPreTrainingOutput(
            loss=loss, generator_loss=generator_loss.detach(), discriminator_loss=discriminator_loss.detach(),
            logits=logits, discriminator_labels=is_replaced.masked_fill(~scored, -100.0),
            generator_logits=generator_logits, replaced_input_ids=replaced_input_ids,
            hidden_states=outputs.hidden_states, attentions=outputs.attentions)
        return _return(return_dict, self.config, output)

    def export_generator(self) -> NucELForMaskedLM:
        """The generator as a standalone NucELForMaskedLM (shared embeddings folded into its own table)."""
        generator = self.generator
        if self.embedding_projection is not None:
            with torch.no_grad():
                generator.model.embeddings.tok_embeddings.weight.copy_(self.shared_generator_embeddings())
        return generator

    def export_discriminator(self) -> NucELForReplacedTokenDetection:
        """The discriminator with its replaced-token head as a standalone NucELForReplacedTokenDetection (sharing
        these weights): its folder loads as the backbone with `AutoModel` and whole with `AutoModelForPreTraining`."""
        exported = NucELForReplacedTokenDetection(self.config)
        exported.model = self.discriminator
        exported.discriminator_head = self.discriminator_head
        exported.discriminator_classifier = self.discriminator_classifier
        return exported.to(next(self.discriminator.parameters()).dtype)

    def save_components(self, output_dir: Union[str, os.PathLike], **save_kwargs: Any) -> Dict[str, str]:
        """Write `output_dir/discriminator` (AutoModel: the backbone; AutoModelForPreTraining: with the
        replaced-token head) and `output_dir/generator` (AutoModelForMaskedLM)."""
        paths = {"discriminator": os.path.join(output_dir, "discriminator"),
                 "generator": os.path.join(output_dir, "generator")}
        self.export_discriminator().save_pretrained(paths["discriminator"], **save_kwargs)
        self.export_generator().save_pretrained(paths["generator"], **save_kwargs)
        return paths


__all__ = [
    "NucELPreTrainedModel",
    "NucELModel",
    "NucELForMaskedLM",
    "NucELForPreTraining",
    "NucELForReplacedTokenDetection",
    "NucELReplacedTokenDetectionOutput",
    "NucELForSequenceClassification",
    "NucELForTokenClassification",
    "NucELForPreTrainingOutput",
]
