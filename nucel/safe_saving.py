"""What a folder others will read may say: configs rebuilt from known fields, nothing private, no foreign code.

A model loaded from a folder keeps every key of that folder's `config.json` as a config attribute, and
`save_pretrained` writes them all out again. So a `hub_token`, a home path, or a `custom_pipelines` entry that
makes `pipeline(..., trust_remote_code=True)` fetch another repository's code would travel on into a fine-tuned
`model/` and a Hub folder. Saved configs are therefore rebuilt from the fields their class defines (NucEL's own;
stock ModernBERT's plus NucEL's extra fields for `--format modernbert`; for another architecture, its class's
defaults), and what was dropped is reported. `private_content` is the last look before anything leaves the
machine: tokens, local paths and config keys outside those allow-lists.
"""

import json
import os
import re

from transformers import AutoConfig

from nucel.modeling_nucel.configuration_nucel import NUCEL_ONLY_FIELDS  # importing it registers model_type nucel
from nucel.modeling_nucel.modeling_nucel import AUTO_MAP
from nucel.tokenization.hf_tokenizers import SECRET_OR_CODE_KEYS, keys_to_leave_out

# Keys every transformers config writes whatever its class (5.x and 4.x names).
COMMON_CONFIG_KEYS = frozenset({
    "architectures", "model_type", "transformers_version", "dtype", "torch_dtype", "id2label", "label2id",
    "problem_type", "auto_map", "tie_word_embeddings", "pad_token_id", "bos_token_id", "eos_token_id",
    "sep_token_id", "cls_token_id", "output_hidden_states", "output_attentions", "return_dict",
    "is_encoder_decoder", "chunk_size_feed_forward", "tokenizer_class"})
# A reference to code in another Hub repository ("org/repo--module.Class"): never carried on.
FOREIGN_CODE = "--"
PRIVATE_TEXT = re.compile(r"hf_[A-Za-z0-9]{20,}|/home/|/root/|/tmp/|/Users/")
TEXT_SUFFIXES = (".json", ".md", ".txt", ".yaml", ".yml", ".cff", ".py")


def known_config_keys(model_type):
    """The keys a config of `model_type` defines (its class's defaults), or None for an unregistered type."""
    try:
        # transformers 4.x writes loading state such as `_name_or_path` (a local path) into config.json: never kept
        keys = {key for key in AutoConfig.for_model(model_type).to_dict() if not key.startswith("_")}
    except (ValueError, KeyError, TypeError):
        return None
    if model_type == "modernbert":  # a --format modernbert export keeps NucEL's fields as inert extra keys
        keys |= set(NUCEL_ONLY_FIELDS) | {"global_attn_every_n_layers", "global_rope_theta", "local_rope_theta"}
    return keys | COMMON_CONFIG_KEYS


def _allowed_auto_map(auto_map, allowed_references):
    """The auto_map entries that name code shipped in the folder itself (and, where given, only those)."""
    if not isinstance(auto_map, dict):
        return None
    kept = {}
    for auto_class, reference in auto_map.items():
        references = reference if isinstance(reference, (list, tuple)) else [reference]
        named = [ref for ref in references if ref]
        if any(not isinstance(ref, str) or FOREIGN_CODE in ref for ref in named):
            continue
        if allowed_references is not None and any(ref not in allowed_references for ref in named):
            continue
        kept[auto_class] = reference
    return kept or None


def own_code_references(model_type):
    """The code references a saved config of `model_type` may name: NucEL's remote code, none for a stock
    architecture, and for another model's remote code the files its folder ships (None: not decided here)."""
    if model_type == "nucel":
        return set(AUTO_MAP.values())
    return None if known_config_keys(model_type) is None else set()


def split_config(values):
    """(the keys a rebuilt config.json keeps, with their values; what it leaves out and why): only the fields its
    class defines (any key, where the type is not registered), never `_`-prefixed loading state (transformers 4.x
    writes `_name_or_path`, a local path), credentials or `custom_pipelines`, and an `auto_map` naming only the
    folder's own code."""
    model_type = values.get("model_type")
    allowed = known_config_keys(model_type) if isinstance(model_type, str) else None
    kept, left_out = {}, []
    for key, value in values.items():
        if key.startswith("_") or SECRET_OR_CODE_KEYS.search(key) or (allowed is not None and key not in allowed):
            left_out.append((key, f"key {key!r} outside the allow-list"))
            continue
        if key == "auto_map":
            value = _allowed_auto_map(value, own_code_references(model_type) if allowed is not None else None)
            if value != values[key]:
                left_out.append((key, "auto_map naming code that is not the folder's own"))
            if value is None:
                continue
        kept[key] = value
    return kept, left_out


def rebuild_model_config(folder):
    """config.json of a just-saved model rebuilt from its class's known fields (`split_config`); returns the keys
    left out."""
    path = os.path.join(folder, "config.json")
    with open(path, encoding="utf-8") as handle:
        kept, left_out = split_config(json.load(handle))
    if left_out:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(kept, handle, indent=2, sort_keys=True)
            handle.write("\n")
    return [key for key, _ in left_out]


def private_content(folder):
    """Every reason the files of `folder` must not leave this machine: a Hugging Face token or a local path in
    a text file, a symlink, or a config key outside the allow-lists. [] when it is clean."""
    problems = []
    for root, directories, names in os.walk(folder):
        directories[:] = [name for name in directories if not name.startswith(".")]
        for name in sorted(names):
            path = os.path.join(root, name)
            if name.startswith(".nucel-run"):
                continue  # the run marker and lock: never uploaded
            if os.path.islink(path):
                problems.append(f"{path}: a symlink")
                continue
            if not name.endswith(TEXT_SUFFIXES) and not name.startswith("LICENSE"):
                continue
            with open(path, encoding="utf-8", errors="replace") as handle:
                found = PRIVATE_TEXT.search(handle.read())
            if found:
                problems.append(f"{path}: holds {found.group()[:6]}... (a token or a local path)")
    return problems + [f"{os.path.join(folder, name)}: {what}" for name, what in outside_allow_lists(folder)]


def outside_allow_lists(folder):
    """(file, what) for every key of the folder's config.json and tokenizer_config.json that a rebuilt config
    leaves out: keys its class does not define, credentials, custom pipelines, code in other repositories."""
    found = []
    path = os.path.join(folder, "config.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            found += [("config.json", why) for _, why in split_config(json.load(handle))[1]]
    path = os.path.join(folder, "tokenizer_config.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            values = json.load(handle)
        found += [("tokenizer_config.json", f"key {key!r} outside the allow-list") for key in keys_to_leave_out(values)]
    return found
