"""The model a fine-tuning run trains and the folder it leaves for users: one fresh model per seed (a classifier
on a pretrained encoder, a frozen-encoder probe, LoRA adapters, or a baseline), the tokenizer it reads, the
longest input it takes, and model/ written so that the Auto classes load it again.

    pretrained    the --model folder or Hub id with a new classification head (all weights train, or LoRA's)
    probe         the pretrained encoder frozen; a linear head or a CNN reads one layer's embeddings (Tang & Koo)
    random-init   NucEL with a folder's (or the published) shape and fresh weights
    onehot-cnn    the one-hot CNN baseline (training/finetuning/baselines.py)
"""

import argparse
import json
import os
import shutil

from safetensors.torch import save_file
from transformers import AutoModel, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel

from nucel import model_folder
from nucel.commands import is_main_rank
from nucel.console import list_names, note
from nucel.modeling_nucel import NucELConfig, NucELForSequenceClassification
from nucel.modeling_nucel.modeling_nucel import follow_umask
from nucel.outputs import remove
from nucel.run_records import CONVERSION_FILE
from nucel.safe_loading import load_model_config, load_pretrained
from nucel.safe_saving import rebuild_model_config
from nucel.tasks import Task
from nucel.tokenization.hf_tokenizers import load_saved_tokenizer, load_tokenizer, save_tokenizer
from nucel.training.finetuning.baselines import (
    FrozenEncoderProbe,
    SequenceCNNConfig,
    SequenceCNNForSequenceClassification,
)

# Config keys the Trainer sets on the model it trains (TrainingArguments.use_cache): left out of model/ unsaid.
TRAINER_CONFIG_KEYS = frozenset({"use_cache"})
# Encoder Linear layers LoRA adapts in a NucEL (ModernBERT) backbone; the new head trains in full.
NUCEL_LORA_TARGETS = ["Wqkv", "Wo", "Wi"]


def resolve_model(name: str) -> model_folder.ModelChoice:
    """(kind, location) of --model: onehot-cnn | random-init | pretrained (nucel.model_folder says what --model
    means; the one-hot CNN is this room's own baseline)."""
    return model_folder.resolve_model(name, baselines=("onehot-cnn",))


def build_tokenizer(location: str | None, trust_remote_code: bool = False):
    if location is None:  # the baselines and the default random-init read single nucleotides
        return load_tokenizer("nucleotide")
    return load_saved_tokenizer(location, trust_remote_code)


def max_tokens(kind: str, config: PretrainedConfig, tokenizer) -> int | None:
    """The longest input (specials included) the model takes; None: any length (convolutions)."""
    if kind == "onehot-cnn":
        return None
    limit = getattr(config, "max_position_embeddings", None) or tokenizer.model_max_length
    return limit if limit < 1e9 else None  # transformers' "no limit" sentinel is a huge integer


def build_task_model(args: argparse.Namespace, kind: str, location: str | None, task: Task,
                     model_config: PretrainedConfig | None = None) -> PreTrainedModel:
    """A fresh model for one seed: classifier, probe, or baseline, labelled with the task's classes."""
    labels = {"num_labels": task.num_labels, "problem_type": task.problem_type,
              "id2label": dict(enumerate(task.label_names)),
              "label2id": {name: i for i, name in enumerate(task.label_names)}}
    if kind == "onehot-cnn":
        return SequenceCNNForSequenceClassification(SequenceCNNConfig(**labels))
    if kind == "random-init":
        config = load_model_config(location) if location else NucELConfig()
        if config.model_type != NucELConfig.model_type:
            raise ValueError(f"--model random-init:{location}: config.json has model_type {config.model_type!r}; "
                             "random-init takes the shape of a NucEL folder")
        config = NucELConfig.from_dict({**config.to_dict(), **labels, "classifier_pooling": args.pooling})
        return NucELForSequenceClassification(config)
    if args.probe:
        encoder, report = load_pretrained(AutoModel, location, args.trust_remote_code)
        note_loading(location, report, "a probe reads the encoder only")
        return FrozenEncoderProbe(encoder, args.probe, task.num_labels, task.problem_type, args.probe_layer)
    model_config = model_config or load_model_config(location, args.trust_remote_code)
    nucel = model_config.model_type == NucELConfig.model_type
    model, report = load_pretrained(AutoModelForSequenceClassification, location, args.trust_remote_code,
                                    **({"classifier_pooling": args.pooling} if nucel else {}), **labels)
    note_loading(location, report, "a classifier for this task")
    if args.lora:
        from peft import LoraConfig, TaskType, get_peft_model  # noqa: PLC0415  (only --lora needs peft)

        nucel = isinstance(model, NucELForSequenceClassification) or model.config.model_type == "nucel"
        model = get_peft_model(model, LoraConfig(
            task_type=TaskType.SEQ_CLS, r=args.lora_rank, lora_alpha=2 * args.lora_rank, lora_dropout=0.05,
            target_modules=NUCEL_LORA_TARGETS if nucel else "all-linear",
            modules_to_save=["head", "classifier"] if nucel else None))
    return model


def note_loading(location: str, report: dict, purpose: str) -> None:
    """What transformers' loading report says of a pretrained encoder under a task head, as one note (once per
    folder): the head's weights initialised fresh, and the checkpoint's own head (the discriminator's or
    generator's) left unused. Both are expected; a backbone weight out of place is load_pretrained's warning."""
    parts = []
    if report["newly_initialised"]:
        parts.append(f"{list_names(report['newly_initialised'])} initialised fresh (a new head: {purpose})")
    if report["unused_head_keys"]:
        parts.append(f"its {list_names(report['unused_head_keys'])} not used (the checkpoint's own head)")
    if parts:
        note(f"{location}: " + "; ".join(parts))


def save_model(model, tokenizer, directory: str, model_name: str) -> str:
    """The model users load again, written into `directory` (a temporary folder of this run, replaced when a
    later seed does better): LoRA merged into the weights; for a probe, the head and what it reads. `model_name`:
    the --model it was fine-tuned from."""
    remove(directory)
    os.makedirs(directory)
    write_model(model, tokenizer, directory, model_name)
    return directory


def write_model(model, tokenizer, directory: str, model_name: str) -> str:
    if isinstance(model, FrozenEncoderProbe):
        save_file({k: v.contiguous() for k, v in model.head.state_dict().items()},
                  os.path.join(directory, "probe_head.safetensors"))
        with open(os.path.join(directory, "probe.json"), "w", encoding="utf-8") as handle:
            json.dump({"encoder": model_name, "probe": model.probe, "layer": model.layer,
                       "num_labels": model.config.num_labels, "problem_type": model.config.problem_type}, handle,
                      indent=1)
        return directory
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(directory)
    follow_umask(directory)  # a baseline or another model's class writes its weights 0600 too
    # minus what the Trainer itself sets on the model's config (use_cache): never part of the source model
    dropped = set(rebuild_model_config(directory) + save_tokenizer(tokenizer, directory)) - TRAINER_CONFIG_KEYS
    if dropped and is_main_rank():
        print(f"model/: left out of its configs (not fields of the model or tokenizer): {', '.join(sorted(dropped))}",
              flush=True)
    kind, location = resolve_model(model_name)
    conversion = os.path.join(location, CONVERSION_FILE) if kind == "pretrained" and os.path.isdir(location) \
        else None
    if conversion and os.path.isfile(conversion):  # weights imported with nucel-convert: the credit travels on
        shutil.copyfile(conversion, os.path.join(directory, CONVERSION_FILE))
    return directory
