"""Loading what others wrote without running it, and saying exactly what was loaded.

- safetensors files: the header must describe the whole file (a truncated or corrupt file is one error line),
  and every floating-point weight must be finite (a NaN or inf weight is refused, naming the tensor);
- pickles (optimizer and RNG states): `torch.load(weights_only=True)`, tensors and plain data only;
- model folders: configs, weights and tokenizers load with `trust_remote_code=False`. NucEL folders need no code
  from the folder: importing `modeling_nucel` registers this package's own classes with the Auto classes, and
  transformers' own architectures need none either. A folder that needs its own code is refused unless the user
  passes `--trust-remote-code`. A model whose backbone weights are not all in the checkpoint (say, a config of
  another `model_type` over NucEL weights) is refused rather than trained from random weights under its name.
"""

import os
import pickle
import sys

import torch
from safetensors import SafetensorError, safe_open
from transformers import AutoConfig

import nucel.modeling_nucel  # noqa: F401  (registers NucEL with the Auto classes: no remote code needed for it)
from nucel.commands import is_main_rank
from nucel.console import library_errors_only


def first_line(failure):
    text = str(failure).strip()
    return text.splitlines()[0] if text else type(failure).__name__


def check_safetensors(path):
    """One line for a missing, truncated or corrupt safetensors file (its header must describe the whole file)."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: missing")
    try:
        with safe_open(path, "pt") as handle:
            handle.keys()
    except (SafetensorError, OSError) as failure:
        raise ValueError(f"{path}: truncated or corrupt safetensors file ({failure})") from None


def load_plain_data(path):
    """`torch.load(path, weights_only=True)` with numpy's RNG-state types allowed: tensors and plain data only.
    Anything else (a pickle that would build other objects, i.e. run code) is refused with one line."""
    # accelerate's torch.load(weights_only=True) with numpy's array types; only checkpoints need it, so the model
    # loaders (and the transformers-4.48 test venv, which lacks accelerate) never import it. Without accelerate (a
    # core install: `nucel convert` of a pytorch_model.bin) torch's own weights_only load reads the tensors a
    # weights file holds; RNG states (numpy arrays) are in training checkpoints, which need the [train] extra.
    try:
        from accelerate.utils import load as load_weights_only  # noqa: PLC0415  (see the comment above)
    except ImportError:
        load_weights_only = torch.load

    if not os.path.isfile(path):
        raise ValueError(f"{path}: missing")
    try:
        return load_weights_only(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as failure:
        raise ValueError(f"{path}: refused: it holds Python objects other than tensors and plain data, which "
                         f"could run code when loaded ({first_line(failure)})") from None
    except (EOFError, RuntimeError, OSError, ValueError) as failure:
        raise ValueError(f"{path}: truncated or corrupt ({first_line(failure)})") from None


def check_finite(path):
    """A safetensors file whose floating-point tensors are all finite. One NaN or inf weight makes a model's outputs
    NaN (or quietly wrong) everywhere, so it is refused by name before anything is computed with it."""
    with safe_open(path, "pt") as handle:
        for key in handle.keys():
            tensor = handle.get_tensor(key)
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise ValueError(f"{path}: tensor {key} holds NaN or infinite values; a model with such weights "
                                 "computes NaN or wrong numbers (re-export it from a checkpoint whose weights are "
                                 "finite)")


def check_weight_files(location):
    """Every safetensors file of a local model folder opens and holds finite weights (Hub ids are checked by
    transformers on download)."""
    if os.path.isdir(location):
        for name in sorted(os.listdir(location)):
            if name.endswith(".safetensors"):
                check_safetensors(os.path.join(location, name))
                check_finite(os.path.join(location, name))


def load_model_config(location, trust_remote_code=False):
    """The config of a model folder or Hub id, without running code from it unless asked to."""
    try:
        return AutoConfig.from_pretrained(location, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as failure:
        message = first_line(failure)
        if "trust_remote_code" in str(failure) or "custom code" in str(failure):
            raise ValueError(f"--model {location}: its config needs code from the folder (auto_map); NucEL runs "
                             "no code from model folders unless you pass --trust-remote-code") from None
        raise ValueError(f"--model {location}: could not load its config ({message}); offline, a Hub id loads "
                         "only from the local cache") from None


def load_pretrained(auto_class, location, trust_remote_code=False, **kwargs):
    """`auto_class.from_pretrained(location)` that refuses a model whose backbone weights were not all loaded.
    Returns (model, loading report: the newly initialised head keys, the checkpoint's head weights the model has
    no place for). transformers' own loading report (a table) is silenced; a checkpoint backbone weight the model
    has no place for is printed here in full, as a warning."""
    check_weight_files(location)
    try:
        with library_errors_only():  # its report is read below from `info` instead
            model, info = auto_class.from_pretrained(location, trust_remote_code=trust_remote_code,
                                                     output_loading_info=True, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError) as failure:
        if "trust_remote_code" in str(failure) or "custom code" in str(failure):
            raise ValueError(f"--model {location}: it needs code from the folder (auto_map); NucEL runs no code "
                             "from model folders unless you pass --trust-remote-code") from None
        raise ValueError(f"--model {location}: could not load the model ({first_line(failure)})") from None
    prefix = getattr(model, "base_model_prefix", "") or ""
    is_backbone = model.base_model is model  # every weight of a bare encoder is a backbone weight
    backbone_missing = [key for key in info["missing_keys"] if "pooler." not in key  # BERT's pooler is a head
                        and (is_backbone or (prefix and key.startswith(prefix + ".")))]
    if backbone_missing:
        total = sum(1 for _ in model.state_dict())
        model_type = getattr(model.config, "model_type", "?")
        raise ValueError(
            f"--model {location}: {len(backbone_missing)} of {total} weights of the {model_type} backbone are not in "
            f"its checkpoint (e.g. {backbone_missing[0]}); its config.json (model_type {model_type!r}) does not "
            "describe these weights, and a model with random weights would be trained under its name")
    backbone_parts = {name for name, _ in model.base_model.named_children()}

    def in_backbone(key):
        bare = key[len(prefix) + 1:] if prefix and key.startswith(prefix + ".") else key if is_backbone else ""
        return bare.split(".")[0] in backbone_parts

    unused = sorted(info.get("unexpected_keys", []))
    surprising = [key for key in unused if in_backbone(key)]
    if surprising and is_main_rank():
        print(f"warning: --model {location}: {len(surprising)} backbone weights of its checkpoint have no place in "
              f"the {type(model).__name__} its config.json describes and were not loaded: {', '.join(surprising)}",
              file=sys.stderr, flush=True)
    report = {"model_type": getattr(model.config, "model_type", None), "class": type(model).__name__,
              "newly_initialised": sorted(info["missing_keys"]),
              "unused_checkpoint_keys": len(unused),
              "unused_head_keys": [key for key in unused if not in_backbone(key)]}
    return model, report
