"""Run a NucEL model over windows of DNA: `[CLS] bases [SEP]` rows, padded into batches."""

import numpy as np
import torch

from tokenization import alphabet


def padded_batch(pieces, device):
    """uint8 id arrays -> (input_ids, attention_mask) of `[CLS] piece [SEP]` rows, right-padded with [PAD]."""
    width = max(len(piece) for piece in pieces) + 2
    input_ids = np.full((len(pieces), width), alphabet.PAD_ID, dtype=np.int64)
    attention_mask = np.zeros((len(pieces), width), dtype=np.int64)
    for row, piece in enumerate(pieces):
        input_ids[row, 0], input_ids[row, len(piece) + 1] = alphabet.CLS_ID, alphabet.SEP_ID
        input_ids[row, 1:len(piece) + 1] = piece
        attention_mask[row, :len(piece) + 2] = 1
    return torch.from_numpy(input_ids).to(device), torch.from_numpy(attention_mask).to(device)


def check_layer(layer, num_layers):
    """--layer: 0 the token embeddings, i after encoder layer i; -1 and num_layers the final output (the last
    layer with the final norm, as `AutoModel` returns it and as fine-tuning's --probe-layer reads it); -k counts
    back (-2: after layer num_layers - 1)."""
    if not -(num_layers + 1) <= layer <= num_layers:
        raise ValueError(f"--layer {layer}: this model has {num_layers} layers (use 0..{num_layers}, or -1 for the "
                         "final output)")
    return layer


def is_final_layer(layer, num_layers):
    return layer in (-1, num_layers)


def max_window(config):
    """The most bases one window may hold: the position limit less [CLS] and [SEP]."""
    return config.max_position_embeddings - 2


def check_sequence_length(name, length, config, where=None):
    """A sequence read in one window (interpretation): not empty, not longer than the model reads."""
    prefix = f"{where}: " if where else ""
    if length == 0:
        raise ValueError(f"{prefix}sequence '{name}' is empty")
    limit = max_window(config)
    if length > limit:
        raise ValueError(f"{prefix}sequence '{name}' is {length:,} bp, but the model reads at most {limit:,} bases at "
                         f"once; interpret a region of at most {limit:,} bp")


def check_window(window, config, option="--window"):
    limit = max_window(config)
    if window is None:
        return min(1024, limit)
    if not 1 <= window <= limit:
        raise ValueError(f"{option} {window}: must be between 1 and {limit} (the model reads "
                         f"{config.max_position_embeddings} tokens: [CLS] + bases + [SEP])")
    return window
