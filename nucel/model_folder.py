"""What `--model` means, for every command, and loading the parts a command needs without running code from the
folder.

`--model` is one of (`resolve_model`; the inference commands read folders through `resolve_folders` /
`resolve_head`, which share `locate` and `read_model_config`'s one "no config.json" line):
- a pretraining run folder (or any folder holding `discriminator/` and `generator/` exports): its discriminator;
- one model folder: a NucEL export, a fine-tuned `model/`, a stock ModernBERT export, a converted release
  (nucel-convert), another single-nucleotide DNA model;
- a Hub id (ORG/NAME): training lets transformers fetch it; inference reads it from the local cache only;
- `random-init[:FOLDER]`: the NucEL architecture (of FOLDER's config) with fresh weights; and the training
  baselines named in `resolve_model`'s `baselines`.

`load(model, parts=..., device=..., dtype=...)` is the one way a command gets its models: the parts asked for,
each under the load rule below, with the `TokenLayout` (tokenization/token_layout.py) their folders share.
Classes come from this package (`modeling_nucel`), weights only from safetensors, and the folder must describe
weights over single nucleotides; anything else is one error line.

One load rule (`load_part`), checked before a model is built or used: every safetensors file opens and its
weights are finite; config.json gives the weights the shapes they have (so absurd sizes cannot exhaust memory);
the backbone is complete; and a command that asks for a head gets a folder that holds it (`load_head`,
`load_detector`): a head transformers would initialise at random is refused.
"""

import copy
import glob
import os
import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import NamedTuple, Optional, Union

import torch
import transformers
from huggingface_hub import snapshot_download
from safetensors import safe_open

from nucel.console import add_output_options, library_errors_only
from nucel.files import is_hub_id, read_json_object
from nucel.modeling_nucel import (
    NucELConfig,
    NucELForMaskedLM,
    NucELForReplacedTokenDetection,
    NucELForSequenceClassification,
    NucELModel,
)
from nucel.safe_loading import check_weight_files, first_line, load_pretrained
from nucel.tokenization.token_layout import TokenLayout

# The heads a model folder can be asked about, by the word commands use for them (--head).
HEAD_CLASSES = {"classifier": NucELForSequenceClassification, "generator": NucELForMaskedLM,
                "discriminator": NucELForReplacedTokenDetection}
ARCHITECTURE_HEADS = {model_class.__name__: kind for kind, model_class in HEAD_CLASSES.items()}
RANDOM_INIT = "random-init"
HEAD_PARTS = {"classifier": "sequence-classification head", "generator": "masked-nucleotide head",
              "discriminator": "replaced-token head"}
DEVICES = "auto, cpu, cuda, cuda:N (N: a GPU index) or mps"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# config.json fields that size the weights, and where a checkpoint shows each (a backbone tensor, dimension; the
# first one present is read). A config that disagrees is refused before the model is built: absurd values
# (hidden_size 10**9, 10**6 layers) would otherwise exhaust memory or spend hours building modules.
SIZE_FIELDS = (("vocab_size", (("embeddings.tok_embeddings.weight", 0),)),
               ("hidden_size", (("embeddings.tok_embeddings.weight", 1), ("final_norm.weight", 0),
                                ("layers.0.attn.Wo.weight", 0))),
               ("intermediate_size", (("layers.0.mlp.Wo.weight", 1),)))
LAYER_KEY = re.compile(r"^layers\.(\d+)\.")


@dataclass
class ModelFolders:
    """Where each part comes from: the discriminator (backbone, and its replaced-token head when exported with it)
    and the generator (masked-nucleotide model). Either may be None."""

    discriminator: Optional[str]
    generator: Optional[str]


class ModelChoice(NamedTuple):
    """What a training command's `--model` names: `kind` pretrained | random-init | a baseline's name, and
    `location` (a folder or a Hub id; None for a baseline, or for random-init of the default shape)."""

    kind: str
    location: Optional[str]


def resolve_model(name: str, baselines: tuple = (), option: str = "--model") -> ModelChoice:
    """`--model` of a training command (fine-tuning, the benchmark grid, the study, publishing's reading of a
    fine-tuned model's base): a baseline in `baselines`, `random-init[:FOLDER]`, a folder (a run folder gives its
    discriminator/, an MLM run its mlm/) or a Hub id, left for transformers to fetch."""
    if name in baselines:
        return ModelChoice(name, None)
    if name == RANDOM_INIT or name.startswith(RANDOM_INIT + ":"):
        location = name.partition(":")[2] or None
        return ModelChoice(RANDOM_INIT, resolve_model(location, baselines, option).location if location else None)
    if os.path.isdir(name):
        for candidate in (name, os.path.join(name, "discriminator"), os.path.join(name, "mlm")):
            if os.path.isfile(os.path.join(candidate, "config.json")):
                return ModelChoice("pretrained", candidate)
        raise ValueError(f"{option} {name}: a folder without config.json (expected a NucEL export such as "
                         "runs/demo/discriminator, or a pretraining run folder holding discriminator/)")
    if is_hub_id(name):
        return ModelChoice("pretrained", name)
    raise ValueError(f"{option} {name!r}: neither a folder, a Hub id (org/name), nor a baseline "
                     f"({', '.join((*baselines, RANDOM_INIT))}[:FOLDER])")


def resolve_folders(model, generator=None):
    """`--model` (+ `--generator`) -> ModelFolders. A run folder gives both of its exports; a masked-LM folder
    (NucEL's generator, a stock ModernBertForMaskedLM, another DNA model) is the generator."""
    model = locate(model)
    generator = locate(generator, "--generator") if generator else None
    if os.path.isdir(os.path.join(model, "discriminator")):
        beside = os.path.join(model, "generator")
        return ModelFolders(os.path.join(model, "discriminator"),
                            generator or (beside if os.path.isdir(beside) else None))
    config = read_model_config(model)
    if (config.get("architectures") or [""])[0].endswith("ForMaskedLM") and generator is None:
        return ModelFolders(None, model)
    return ModelFolders(model, generator)


# config.json files read during one `load` (None outside one): each is read once however many checks ask for it,
# and never kept past the call, so a folder rewritten between two commands is read afresh.
_CONFIGS_OF_THIS_LOAD: ContextVar[Optional[dict]] = ContextVar("configs_of_this_load", default=None)


def read_model_config(folder, option="--model", expected="a NucEL export, e.g. runs/demo/discriminator"):
    """config.json of a model folder as a dict (a copy: callers may change it); a folder without one is the one
    line every command gives for it."""
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        raise ValueError(f"{option} {folder}: no config.json (expected {expected})")
    configs = _CONFIGS_OF_THIS_LOAD.get()
    key = os.path.abspath(path)
    if configs is None or key not in configs:
        config = read_json_object(path, "model config")
        if configs is None:
            return config
        configs[key] = config
    return copy.deepcopy(configs[key])


def is_nucel(config):
    return config.get("model_type") == NucELConfig.model_type


def locate(model, option="--model"):
    """The folder `--model` names: a local folder as it is, or a Hub id (ORG/NAME) from the local Hugging Face
    cache. Nothing is downloaded here: a Hub id not in the cache is one line saying how to fetch it."""
    if os.path.isdir(model):
        return model
    if is_hub_id(model):
        try:
            return snapshot_download(model, local_files_only=True)
        except Exception as failure:  # noqa: BLE001  (any failure means: not in the cache, in one line)
            raise ValueError(f"{option} {model}: a Hub id that is not in the local Hugging Face cache "
                             f"({first_line(failure)}); these commands never download: fetch it first "
                             f"(`hf download {model}`) or give a folder") from None
    raise ValueError(f"{option} {model}: not a folder or a Hub id (expected a NucEL export, a pretraining run "
                     "folder, a fine-tuned model/ folder, a stock ModernBERT export or a cached Hub id)")


def add_runtime_arguments(parser, batch_size):
    """--batch-size, --device, --dtype, --quiet and --progress-bar, the same for every inference command."""
    parser.add_argument("--batch-size", type=int, default=batch_size, help="windows per forward pass")
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--dtype", default="auto", choices=("auto", *DTYPES),
                        help="auto: bfloat16 on GPU, float32 on CPU")
    add_output_options(parser)


def add_trust_argument(parser):
    """--trust-remote-code, for the commands that read other models: their own code runs only when asked."""
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow a non-NucEL model's own code (its auto_map) to run; NucEL folders, stock "
                             "ModernBERT exports and transformers' own architectures need none")


def pick_device(device="auto"):
    """--device as a torch.device this machine has; anything else is one line listing what is accepted (torch's
    own list names a dozen backends this package does not run on)."""
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    match = re.fullmatch(r"(cpu|cuda|mps)(?::(\d+))?", device) if isinstance(device, str) else None
    if match is None:
        raise ValueError(f"--device {device}: expected {DEVICES}")
    kind, index = match.group(1), match.group(2)
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: CUDA is not available on this machine")
        if index is not None and int(index) >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s), cuda:0 to "
                             f"cuda:{torch.cuda.device_count() - 1}")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device}: MPS (Apple GPU) is not available on this machine")
    return torch.device(device)


def pick_dtype(dtype, device):
    """auto: bfloat16 on a GPU, float32 on CPU (where bf16 matmuls are slower, not faster)."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"--dtype {dtype}: expected auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def check_batch_size(batch_size):
    """--batch-size as a whole number of at least 1 (Python callers can pass what argparse would have refused)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"--batch-size {batch_size!r}: expected a whole number, at least 1")
    return batch_size


def checkpoint_shapes(folder):
    """{backbone tensor name (without the heads' `model.` prefix): shape} from the safetensors headers of `folder`,
    read without loading a weight."""
    shapes = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(folder), "*.safetensors"))):
        with safe_open(path, "pt") as handle:
            for key in handle.keys():
                shapes[key[len("model."):] if key.startswith("model.") else key] = handle.get_slice(key).get_shape()
    return shapes


def check_config_sizes(config, shapes, where):
    """The sizes in a config (`config`, a dict) are those of the weights (`shapes`: backbone tensor name -> shape),
    checked before anything is built; `where`: the config's path, for the error line."""
    for field in ("num_hidden_layers", *(name for name, _ in SIZE_FIELDS)):
        value = config.get(field)
        if field in config and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{where}: {field}={value!r}: expected a positive whole number")
    layers = {int(match.group(1)) for match in map(LAYER_KEY.match, shapes) if match}
    if layers and config.get("num_hidden_layers") not in (None, max(layers) + 1):
        raise ValueError(f"{where}: num_hidden_layers={config['num_hidden_layers']}, but the weights beside it hold "
                         f"{max(layers) + 1} layers: it does not describe these weights")
    for field, places in SIZE_FIELDS:
        for tensor, dimension in places:
            if tensor in shapes and field in config:
                size = shapes[tensor][dimension]
                if config[field] != size:
                    raise ValueError(f"{where}: {field}={config[field]}, but the weights beside it have {size} "
                                     f"({tensor} is {list(shapes[tensor])}): it does not describe these weights")
                break


def check_shapes(model_class, folder, shapes, option="--model"):
    """Every weight of `folder` (`shapes`, as checkpoint_shapes reads them) has the shape its config.json gives
    `model_class`: compared on a skeleton built on the meta device (no memory), so a mismatch is one line naming the
    tensor instead of transformers' multi-line report. A head whose weights are all there must also use every
    weight: one left over (say, a `prediction` replaced-token head read as `linear`) means config.json describes
    another head than the one saved, and transformers would drop it without a word."""
    try:
        config = model_class.config_class.from_pretrained(folder)
        with torch.device("meta"):
            skeleton = model_class(config)
    except (OSError, ValueError, TypeError, RuntimeError, OverflowError) as failure:
        raise ValueError(f"{option} {folder}: could not load {model_class.__name__} ({first_line(failure)})") \
            from None

    def bare(key):
        return key[len("model."):] if key.startswith("model.") else key

    for key, tensor in skeleton.state_dict().items():
        if bare(key) in shapes and list(tensor.shape) != list(shapes[bare(key)]):
            raise ValueError(f"{option} {folder}: weight {key} is {list(shapes[bare(key)])} in its checkpoint, but "
                             f"config.json makes it {list(tensor.shape)}: the config does not describe these weights")
    parameters = {bare(key) for key, _ in skeleton.named_parameters()}  # a tied weight once
    unused = sorted(set(shapes) - {bare(key) for key in skeleton.state_dict()})
    if model_class is not NucELModel and parameters <= set(shapes) and unused:
        raise ValueError(f"{option} {folder}: {len(unused)} weights of its checkpoint have no place in the "
                         f"{model_class.__name__} its config.json describes (e.g. {unused[0]}): the config does not "
                         "describe these weights")


# The part a command asks for, as a NucEL class, and the Auto class that loads the same part of another model (a
# stock ModernBERT export, another single-nucleotide DNA model). The replaced-token head exists only in NucEL.
AUTO_CLASSES = {NucELModel: "AutoModel", NucELForMaskedLM: "AutoModelForMaskedLM",
                NucELForSequenceClassification: "AutoModelForSequenceClassification"}


def load_other(folder, config, model_class, device, dtype, option, trust_remote_code):
    """A model that is not NucEL, through transformers' Auto class for the part asked (AUTO_CLASSES), under the
    same rule: weight files that open and hold finite numbers, a complete backbone; code from the folder only with
    `trust_remote_code` (the user's --trust-remote-code). Returns (model, newly initialised head weights)."""
    model_type = config.get("model_type")
    if model_class not in AUTO_CLASSES:
        raise ValueError(f"{option} {folder}: a {model_type!r} model; the {HEAD_PARTS['discriminator']} this needs "
                         "exists only in NucEL models")
    check_weight_files(folder)
    model, report = load_pretrained(getattr(transformers, AUTO_CLASSES[model_class]), folder, trust_remote_code)
    model = model.to(device=device, dtype=dtype).eval()
    return model, report["newly_initialised"]


def load_part(folder, model_class, device, dtype, option="--model", trust_remote_code=False, **options):
    """`model_class` from `folder` in eval mode on `device`; returns (model, names of weights the folder lacks:
    a head newly initialised, which a caller that needs the head refuses). Refused with one line naming `option`
    and the folder: a truncated or corrupt safetensors file, a weight that is NaN or inf, a config.json whose sizes
    are not those of the weights, a missing backbone weight (the folder does not hold what its config says).
    `options` go to `from_pretrained` (e.g. attn_implementation). Another model type goes through `load_other`."""
    config = read_model_config(folder, option)
    if not is_nucel(config):
        return load_other(folder, config, model_class, device, dtype, option, trust_remote_code)
    check_weight_files(folder)
    shapes = checkpoint_shapes(folder)
    check_config_sizes(config, shapes, os.path.join(folder, "config.json"))
    check_shapes(model_class, folder, shapes, option)
    try:
        with library_errors_only():  # its report: read below, said in one line
            model, info = model_class.from_pretrained(folder, use_safetensors=True, output_loading_info=True,
                                                      **options)
    except (OSError, ValueError, RuntimeError, OverflowError, MemoryError) as failure:
        raise ValueError(f"{option} {folder}: could not load {model_class.__name__} ({first_line(failure)})") \
            from None
    missing = sorted(info["missing_keys"])
    backbone_missing = [key for key in missing if model_class is NucELModel or key.startswith("model.")]
    if backbone_missing:
        raise ValueError(f"{option} {folder}: {len(backbone_missing)} backbone weights are not in its checkpoint "
                         f"(e.g. {backbone_missing[0]}): not a complete NucEL export")
    model = model.to(device=device, dtype=dtype).eval()
    if dtype == torch.float16:  # finite in the checkpoint, but float16 tops out at 65504
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise ValueError(f"{option} {folder}: weight {name} overflows float16 (beyond +-65504); use "
                                 "--dtype bfloat16 or float32")
    return model, missing


def load_detector(folder, device, dtype, option="--model", trust_remote_code=False):
    """The discriminator with its replaced-token head, or (None, backbone) for a bare backbone export without the
    head (older exports saved the bare backbone): embeddings still work, detection scores do not. A folder that
    holds another head (a generator, a classifier) or claims the head without its weights is refused: its backbone
    is not the discriminator the scores are named after."""
    config = read_model_config(folder, option)
    if not is_nucel(config):  # another model's encoder: embedding scores only
        return None, load_part(folder, NucELModel, device, dtype, option, trust_remote_code)[0]
    architecture = (config.get("architectures") or ["?"])[0]
    detector, missing = load_part(folder, NucELForReplacedTokenDetection, device, dtype, option)
    if missing and architecture != NucELModel.__name__:
        raise ValueError(f"{option} {folder}: a {architecture} whose weights have no {HEAD_PARTS['discriminator']} "
                         f"({len(missing)} missing, e.g. {missing[0]}); expected a discriminator export "
                         f"({NucELForReplacedTokenDetection.__name__}, a pretraining run's discriminator/)")
    if missing:
        return None, detector.model
    return detector, detector.model


def resolve_head(model, head):
    """(model folder, head) for --model and --head. A pretraining run folder gives its discriminator/ (or, for
    --head generator, its generator/); one export is read as its config's architecture says."""
    if head not in ("auto", *HEAD_CLASSES, "none"):
        raise ValueError(f"--head {head!r}: expected auto, {', '.join(HEAD_CLASSES)} or none")
    model = locate(model)
    if os.path.isdir(os.path.join(model, "discriminator")) or os.path.isdir(os.path.join(model, "generator")):
        if head == "classifier":
            raise ValueError(f"--model {model}: a pretraining run has no classifier; give a fine-tuned model folder "
                             "(nucel finetune writes <output-dir>/model)")
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


def load_head(folder, head, device, dtype, option="--model", needs=None, trust_remote_code=False):
    """`folder`'s model with its `head`, which must be in its weights: a head newly initialised would give
    random numbers under the head's name. `needs`: what asks for the head, for the error line."""
    model, missing = load_part(folder, HEAD_CLASSES[head], device, dtype, option, trust_remote_code)
    if missing:
        raise ValueError(f"{option} {folder}: its weights have no {HEAD_PARTS[head]} ({len(missing)} missing, e.g. "
                         f"{missing[0]}); {needs or f'--head {head}'} needs a model saved with one")
    return model


@dataclass
class LoadedModel:
    """What `load` returns: each part asked for (None where the folder has no such part: a run without a generator,
    a bare backbone without its replaced-token head), the folders they came from, and the `TokenLayout` they
    share."""

    parts: dict
    layout: TokenLayout
    folders: ModelFolders
    head: Optional[str] = None  # the head `parts["head"]` carries (resolved from --head auto)

    def __getitem__(self, part):
        return self.parts[part]


# The parts a command may ask `load` for.
PARTS = {
    "encoder": "the backbone (NucELModel, or another model's encoder): the discriminator's, else the generator's",
    "detector": "the discriminator with its replaced-token head, or None for a bare backbone export",
    "generator": "the masked-nucleotide model, head required",
    "head": "the folder's model with the --head it is asked for (auto: the one its config names; none: its class)",
}


def load(model: str, parts: tuple = ("encoder",), device: Union[str, torch.device] = "auto", dtype: str = "auto",
         generator: Optional[str] = None, head: str = "auto", trust_remote_code: bool = False,
         needs: Optional[dict] = None) -> LoadedModel:
    """The one loader of the inference commands: `--model` (+ `--generator`) -> the `parts` asked for (PARTS), on
    `device` in `dtype` ("auto": the GPU in bfloat16 when there is one, else the CPU in float32), under the load
    rule, with their `TokenLayout`. Parts whose folders disagree on token ids are refused. `needs`: {part: what
    asks for it}, for the error line when a folder lacks a head."""
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"load: unknown part(s) {unknown}; expected {', '.join(PARTS)}")
    needs = needs or {}
    token = _CONFIGS_OF_THIS_LOAD.set({})
    try:
        return _load(model, parts, device, dtype, generator, head, trust_remote_code, needs)
    finally:
        _CONFIGS_OF_THIS_LOAD.reset(token)


def _load(model, parts, device, dtype, generator, head, trust_remote_code, needs):
    if "head" in parts:  # --model (and --head) are read before --device, as each command always did
        folder, head = resolve_head(model, head)
        folders = ModelFolders(folder, None)
    else:
        head, folders = None, resolve_folders(model, generator)
    device = pick_device(device)
    dtype = pick_dtype(dtype, device)
    loaded, sources = {}, {}
    if "head" in parts:
        folder = folders.discriminator
        if head == "none":
            architecture = (read_model_config(folder).get("architectures") or ["?"])[0]
            model_class = HEAD_CLASSES.get(ARCHITECTURE_HEADS.get(architecture), NucELModel)
            loaded["head"] = load_part(folder, model_class, device, dtype, trust_remote_code=trust_remote_code)[0]
        else:
            loaded["head"] = load_head(folder, head, device, dtype, needs=needs.get("head"),
                                       trust_remote_code=trust_remote_code)
        sources[folder] = loaded["head"]
    if "generator" in parts:
        loaded["generator"] = load_head(folders.generator, "generator", device, dtype,
                                        "--generator" if generator else "--model", needs.get("generator"),
                                        trust_remote_code) if folders.generator else None
        sources[folders.generator] = loaded["generator"]
    if "detector" in parts:
        loaded["detector"], loaded["encoder"] = load_detector(
            folders.discriminator, device, dtype, trust_remote_code=trust_remote_code) \
            if folders.discriminator else (None, None)
        sources[folders.discriminator] = loaded["encoder"]
    elif "encoder" in parts:
        folder = folders.discriminator or folders.generator
        loaded["encoder"] = load_part(folder, NucELModel, device, dtype, trust_remote_code=trust_remote_code)[0]
        sources[folder] = loaded["encoder"]
    layouts = {folder: TokenLayout.from_folder(folder, part.config, trust_remote_code)
               for folder, part in sources.items() if part is not None}
    if not layouts:
        raise ValueError(f"--model {model}: holds none of the parts asked for ({', '.join(parts)})")
    layout, *others = layouts.values()
    if any(other != layout for other in others):
        raise ValueError(f"--generator {folders.generator}: its tokenizer's ids differ from those of "
                         f"{folders.discriminator}; score with a generator and discriminator of one vocabulary")
    return LoadedModel(loaded, layout, folders, head)
