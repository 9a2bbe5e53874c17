"""Load the NucEL models a command needs from a saved folder, without running any code from the folder.

`--model` is a pretraining run (or any folder holding `discriminator/` and `generator/` exports) or one NucEL
model folder. Classes come from this package (`modeling_nucel`), weights only from safetensors, and the folder
must describe NucEL weights over single nucleotides (its token ids: `inference.windows.TokenLayout`); anything
else is one error line.
"""

import os
from dataclasses import dataclass
from typing import Optional

import torch

from modeling_nucel import (
    NucELConfig,
    NucELForMaskedLM,
    NucELForReplacedTokenDetection,
    NucELForSequenceClassification,
    NucELModel,
)
from tokenization.json_files import read_json_object

# The heads a model folder can be asked about, by the name commands use.
HEADS = {"classifier": NucELForSequenceClassification, "generator": NucELForMaskedLM,
         "discriminator": NucELForReplacedTokenDetection}
ARCHITECTURE_HEADS = {model_class.__name__: kind for kind, model_class in HEADS.items()}
HEAD_PARTS = {"classifier": "sequence-classification head", "generator": "masked-nucleotide head",
              "discriminator": "replaced-token head"}


@dataclass
class ModelFolders:
    """Where each part comes from: the discriminator (backbone, and its replaced-token head when exported with it)
    and the generator (masked-nucleotide model). Either may be None."""

    discriminator: Optional[str]
    generator: Optional[str]


def resolve_folders(model, generator=None):
    """`--model` (+ `--generator`) -> ModelFolders. A run folder gives both of its exports."""
    if not os.path.isdir(model):
        raise ValueError(f"--model {model}: not a folder (expected a NucEL export or a pretraining run folder)")
    if os.path.isdir(os.path.join(model, "discriminator")):
        beside = os.path.join(model, "generator")
        return ModelFolders(os.path.join(model, "discriminator"),
                            generator or (beside if os.path.isdir(beside) else None))
    config = read_model_config(model)
    if (config.get("architectures") or [""])[0] == "NucELForMaskedLM" and generator is None:
        return ModelFolders(None, model)
    return ModelFolders(model, generator)


def read_model_config(folder):
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        raise ValueError(f"--model {folder}: no config.json (expected a NucEL export, e.g. runs/demo/discriminator)")
    config = read_json_object(path, "model config")
    if config.get("model_type") != NucELConfig.model_type:
        raise ValueError(f"{path}: model_type {config.get('model_type')!r}; only NucEL models (model_type "
                         f"'{NucELConfig.model_type}') are read here")
    return config


def add_runtime_arguments(parser, batch_size):
    """--batch-size, --device, --dtype and --quiet, the same for every inference command."""
    parser.add_argument("--batch-size", type=int, default=batch_size, help="windows per forward pass")
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                        help="auto: bfloat16 on GPU, float32 on CPU")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def pick_device(device="auto"):
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine")
    return torch.device(device)


def pick_dtype(dtype, device):
    """auto: bfloat16 on a GPU, float32 on CPU (where bf16 matmuls are slower, not faster)."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def load_part(folder, model_class, device, dtype, **options):
    """`model_class` from `folder` in eval mode on `device`; returns (model, names of weights the folder lacks).
    A missing backbone weight is an error: the folder does not hold what its config says. `options` go to
    `from_pretrained` (e.g. attn_implementation)."""
    read_model_config(folder)
    try:
        model, info = model_class.from_pretrained(folder, use_safetensors=True, output_loading_info=True, **options)
    except (OSError, ValueError, RuntimeError) as failure:
        first = (str(failure).strip().splitlines() or [type(failure).__name__])[0]
        raise ValueError(f"--model {folder}: could not load {model_class.__name__} ({first})") from None
    missing = sorted(info["missing_keys"])
    backbone_missing = [key for key in missing if model_class is NucELModel or key.startswith("model.")]
    if backbone_missing:
        raise ValueError(f"--model {folder}: {len(backbone_missing)} backbone weights are not in its checkpoint "
                         f"(e.g. {backbone_missing[0]}): not a complete NucEL export")
    return model.to(device=device, dtype=dtype).eval(), missing


def load_detector(folder, device, dtype):
    """The discriminator with its replaced-token head, or (None, backbone) for an export without the head (older
    exports saved the bare backbone): embeddings still work, detection scores do not."""
    detector, missing = load_part(folder, NucELForReplacedTokenDetection, device, dtype)
    if missing:
        return None, detector.model
    return detector, detector.model


def resolve_head(model, head):
    """(model folder, head) for --model and --head. A pretraining run folder gives its discriminator/ (or, for
    --head generator, its generator/); one export is read as its config's architecture says."""
    if not os.path.isdir(model):
        raise ValueError(f"--model {model}: not a folder (expected a NucEL export, a fine-tuned model/ folder or a "
                         "pretraining run folder)")
    if os.path.isdir(os.path.join(model, "discriminator")) or os.path.isdir(os.path.join(model, "generator")):
        if head == "classifier":
            raise ValueError(f"--model {model}: a pretraining run has no classifier; give a fine-tuned model folder "
                             "(training/finetune.py writes <output-dir>/model)")
        part = "generator" if head == "generator" else "discriminator"
        folder = os.path.join(model, part)
        if not os.path.isdir(folder):
            raise ValueError(f"--model {model}: no {part}/ export in this run folder")
        return folder, part if head == "auto" else head
    architecture = (read_model_config(model).get("architectures") or ["?"])[0]
    if head == "auto":
        if architecture not in ARCHITECTURE_HEADS:
            raise ValueError(f"--model {model}: a {architecture} has no head to interpret; give a classifier, "
                             "generator or discriminator export, or --head none --attention for attention maps")
        head = ARCHITECTURE_HEADS[architecture]
    return model, head


def load_head(folder, head, device, dtype):
    model, missing = load_part(folder, HEADS[head], device, dtype)
    if missing:
        raise ValueError(f"--model {folder}: its weights have no {HEAD_PARTS[head]} ({len(missing)} missing, e.g. "
                         f"{missing[0]}); --head {head} needs a model saved with one")
    return model
