"""The window and layer options of the inference commands (--window, --layer, a sequence's length), checked against
what a model reads. Windows themselves are framed by `TokenLayout` (tokenization/token_layout.py)."""


import numpy as np

from nucel.tokenization.token_layout import NATIVE


def whole_number(value, option):
    """`value` as an int; a str, float or bool (what a Python caller can pass and argparse would have refused) is
    one error line rather than a TypeError from a comparison."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{option} {value!r}: expected a whole number")
    return int(value)


def check_layer(layer, num_layers):
    """--layer: 0 the token embeddings, i after encoder layer i; -1 and num_layers the final output (the last
    layer with the final norm, as `AutoModel` returns it and as fine-tuning's --probe-layer reads it); -k counts
    back (-2: after layer num_layers - 1)."""
    layer = whole_number(layer, "--layer")
    if not -(num_layers + 1) <= layer <= num_layers:
        raise ValueError(f"--layer {layer}: this model has {num_layers} layers (use 0..{num_layers}, or -1 for the "
                         "final output)")
    return layer


def is_final_layer(layer, num_layers):
    return layer in (-1, num_layers)


def check_sequence_length(name, length, config, where=None, layout=NATIVE):
    """A sequence read in one window (interpretation): not empty, not longer than the model reads."""
    prefix = f"{where}: " if where else ""
    if length == 0:
        raise ValueError(f"{prefix}sequence '{name}' is empty")
    limit = layout.max_bases(config)
    if length > limit:
        raise ValueError(f"{prefix}sequence '{name}' is {length:,} bp, but the model reads at most {limit:,} bases at "
                         f"once; interpret a region of at most {limit:,} bp")


def check_window(window, config, option="--window", layout=NATIVE):
    limit = layout.max_bases(config)
    if window is None:
        return min(1024, limit)
    window = whole_number(window, option)
    if not 1 <= window <= limit:
        raise ValueError(f"{option} {window}: must be between 1 and {limit} (the model reads "
                         f"{config.max_position_embeddings} tokens: {layout.template})")
    return window
