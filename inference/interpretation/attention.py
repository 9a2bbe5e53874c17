"""Attention maps of a NucEL encoder for one sequence: every layer and head, and two per-position summaries.

The fused kernels (sdpa, flash, flex) never form the weights, so the encoder runs with eager attention for the
maps and goes back to its own implementation after; local layers still run block by block and their weights
come back as the full matrix, exactly zero outside the `local_attention` band. Maps keep [CLS] and [SEP] (token t
is base t - 1; a model trained without [SEP] has none); the summaries are over bases.
"""

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from nucel.inference.windows import check_sequence_length
from nucel.tokenization.token_layout import NATIVE


@dataclass
class AttentionMaps:
    name: str
    ids: np.ndarray  # (L,) token ids
    maps: np.ndarray  # (layers, heads, T, T), T = L + 2 ([CLS], [SEP]) or L + 1: row = query, column = key
    layer_types: list  # "sliding_attention" (local) or "full_attention" (global), per layer
    half_window: int  # a local-layer query sees keys up to this many tokens away

    @property
    def bases(self):
        """The tokens that are bases, [CLS] and [SEP] left out: index both axes of a map with it."""
        return slice(1, 1 + len(self.ids))

    def label(self, layer):
        local = self.layer_types[layer] == "sliding_attention"
        return f"layer {layer + 1} {'local ±' + str(self.half_window) if local else 'global'}"

    def visible(self, layer):
        """(T, T) bool: the keys each query of `layer` can attend to (local layers: within the window)."""
        tokens = self.maps.shape[-1]
        if self.layer_types[layer] != "sliding_attention":
            return np.ones((tokens, tokens), dtype=bool)
        return np.abs(np.subtract.outer(np.arange(tokens), np.arange(tokens))) <= self.half_window

    def received(self, layers=None):
        """Attention each base receives from the bases over heads, queries and `layers` (default all), relative to
        uniform attention (every query spreading evenly over the keys it can see): 1 is neutral, so bases near the
        ends, which fewer local-layer queries can reach, are not read as ignored."""
        layers = range(len(self.layer_types)) if layers is None else list(layers)
        bases = self.bases
        observed = sum(self.maps[layer][:, bases, bases].mean(axis=0).sum(axis=0) for layer in layers)
        uniform = 0.0
        for layer in layers:
            visible = self.visible(layer)
            uniform = uniform + (visible / visible.sum(axis=1, keepdims=True))[bases, bases].sum(axis=0)
        return observed / uniform

    def received_by_type(self):
        """{"local": ..., "global": ...}: `received` over each kind of layer that the model has."""
        kinds = {"local": "sliding_attention", "global": "full_attention"}
        return {kind: self.received([i for i, t in enumerate(self.layer_types) if t == layer_type])
                for kind, layer_type in kinds.items() if layer_type in self.layer_types}

    def rollout(self):
        """Attention rollout (Abnar & Zuidema 2020): heads averaged, the residual path added as 0.5 I + 0.5 A,
        rows renormalised, multiplied through the layers. Returns the attention each base receives from the bases
        through the whole stack (mean over query bases)."""
        tokens = self.maps.shape[-1]
        flow = np.eye(tokens)
        for layer in self.maps.astype(np.float64):
            mixed = 0.5 * layer.mean(0) + 0.5 * np.eye(tokens)
            flow = (mixed / mixed.sum(-1, keepdims=True)) @ flow
        return flow[self.bases, self.bases].mean(0)


@contextmanager
def eager_attention(model):
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        yield model
    finally:
        model.set_attn_implementation(previous)


@torch.no_grad()
def attention_maps(encoder, name, ids, layout=NATIVE):
    """Run `encoder` (a NucELModel) over one sequence (alphabet ids; `layout`: the model's token ids) and keep
    every attention matrix."""
    config = encoder.config
    ids = np.asarray(ids, dtype=np.uint8)
    check_sequence_length(name, len(ids), config, layout=layout)
    device = next(encoder.parameters()).device
    input_ids, attention_mask = layout.batch([ids], device)
    with eager_attention(encoder):
        output = encoder(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
    maps = np.stack([weights[0].float().cpu().numpy() for weights in output.attentions])
    return AttentionMaps(name, ids, maps, list(config.layer_types), config.local_attention // 2)
