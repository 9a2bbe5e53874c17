"""Pretraining configuration: a YAML preset (training/configs/*.yaml) plus command-line overrides.

Top-level keys are the fields of `PretrainConfig`; the `model:` section holds `NucELConfig` arguments. Any key can
be overridden on the command line as `--key value` (dashes or underscores), model keys included
(`--hidden-size 128`); values are parsed as YAML, so `--fasta [a.fa, b.fa]` and `--bf16 true` work.
"""

import dataclasses
import os
from typing import Optional

import yaml

from modeling_nucel import NucELConfig

from .masking import STRATEGIES

OBJECTIVES = ("electra", "mlm")
# Keys that may change when resuming: they do not change what the model computes or which data it sees.
RESUMABLE_CHANGES = frozenset({
    "max_steps", "output_dir", "resume", "logging_steps", "eval_steps", "eval_batches", "save_steps",
    "save_total_limit", "report_to", "num_workers", "fasta", "genome_store", "progress_bar", "compute_estimate",
})


@dataclasses.dataclass
class PretrainConfig:
    # data: FASTA files -> genome store -> windows
    fasta: list = dataclasses.field(default_factory=list)
    genome_store: Optional[str] = None          # default: <output_dir>/genome-store
    window_length: int = 1224
    window_overlap: int = 100
    crop_length: int = 1024
    max_n_fraction: float = 0.1
    reverse_complement_prob: float = 0.5
    validation_fraction: float = 0.02           # the last 2% of every record, held out as a region
    validation_records: list = dataclasses.field(default_factory=list)  # or whole records by name
    # objective and masking
    objective: str = "electra"
    masking: str = "uniform"
    mask_rate: float = 0.15
    bert_80_10_10: bool = False
    span_mean_length: float = 3.0
    randommask_phases: int = 5
    randommask_min_span: int = 6
    randommask_growth: int = 2
    # optimisation
    max_steps: int = 1000
    global_batch_size: int = 16                 # = per_device_batch_size x processes x gradient accumulation
    per_device_batch_size: int = 16
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.98
    adam_epsilon: float = 1e-6
    lr_scheduler: str = "linear"                # any transformers.get_scheduler name
    warmup_steps: int = 100
    max_grad_norm: float = 1.0
    mixed_precision: str = "auto"               # auto: bf16 on CUDA, fp32 on CPU; or no | bf16 | fp16
    attn_implementation: str = "auto"           # auto: flash_attention_2 on CUDA when installed, else sdpa
    seed: int = 42
    # bookkeeping
    output_dir: str = "runs/pretrain"
    resume: bool = False
    logging_steps: int = 10
    eval_steps: int = 100
    eval_batches: int = 8
    save_steps: int = 500
    save_total_limit: int = 2
    report_to: str = "none"                     # none | tensorboard
    num_workers: int = 0
    progress_bar: bool = True
    compute_estimate: dict = dataclasses.field(default_factory=dict)  # recorded for the full run; see compute.py
    model: dict = dataclasses.field(default_factory=dict)             # NucELConfig arguments

    def validate(self):
        def fail(field, expected):
            raise ValueError(f"config {field}={getattr(self, field)!r}: expected {expected}")

        if self.objective not in OBJECTIVES:
            fail("objective", " or ".join(OBJECTIVES))
        if self.masking not in STRATEGIES:
            fail("masking", "one of " + ", ".join(STRATEGIES))
        if self.report_to not in ("none", "tensorboard"):
            fail("report_to", "none or tensorboard")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            fail("mixed_precision", "auto, no, bf16 or fp16")
        for field in ("max_steps", "global_batch_size", "per_device_batch_size", "logging_steps", "eval_steps",
                      "save_steps", "eval_batches", "crop_length"):
            if not isinstance(getattr(self, field), int) or getattr(self, field) < 1:
                fail(field, "a positive integer")
        if not self.fasta and not self.genome_store:
            fail("fasta", "one or more FASTA files (--fasta F ...) or a prepared genome_store")
        model = self.model_config()
        if self.crop_length + 2 > model.max_position_embeddings:
            fail("crop_length", f"at most max_position_embeddings - 2 = {model.max_position_embeddings - 2} "
                                "([CLS] and [SEP] take two positions)")
        return self

    def model_config(self):
        """The NucELConfig this run trains (mask rate recorded in it, so exports document the recipe)."""
        try:
            return NucELConfig(**{**self.model, "mask_rate": self.mask_rate})
        except TypeError as error:
            raise ValueError(f"config model: {error}") from None

    def gradient_accumulation_steps(self, num_processes):
        per_step = self.per_device_batch_size * num_processes
        if self.global_batch_size % per_step:
            raise ValueError(f"config global_batch_size={self.global_batch_size}: expected a multiple of "
                             f"per_device_batch_size x processes = {self.per_device_batch_size} x {num_processes}")
        return self.global_batch_size // per_step

    @property
    def store_directory(self):
        return self.genome_store or os.path.join(self.output_dir, "genome-store")

    def to_dict(self):
        return dataclasses.asdict(self)


FIELDS = {field.name: field for field in dataclasses.fields(PretrainConfig)}
MODEL_FIELDS = frozenset(NucELConfig().to_dict())


def load_config(path=None, overrides=()):
    """`path` (YAML) then `overrides` (("key", "yaml value") pairs) on top of the defaults; validated."""
    values = {}
    if path is not None:
        if not os.path.isfile(path):
            raise ValueError(f"{path}: config file not found")
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of config keys")
    source = path or "config"
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown}; expected keys of training.config.PretrainConfig")
    values["model"] = dict(values.get("model") or {})
    unknown_model = sorted(set(values["model"]) - MODEL_FIELDS)
    if unknown_model:
        raise ValueError(f"{source}: unknown model key(s) {unknown_model}; expected NucELConfig arguments")
    for key, text in overrides:
        name = key.lstrip("-").replace("-", "_")
        value = yaml.safe_load(text) if isinstance(text, str) else text
        if name in FIELDS:
            values[name] = value
        elif name in MODEL_FIELDS:
            values["model"][name] = value
        else:
            raise ValueError(f"--{key.lstrip('-')}: not a key of the pretraining config or of NucELConfig")
    if isinstance(values.get("fasta"), str):
        values["fasta"] = [values["fasta"]]
    return PretrainConfig(**values).validate()


def incompatible_change(saved, current):
    """The first key (dotted for model keys) whose change makes `saved` -> `current` not a resume, or None."""
    for key in sorted(set(saved) | set(current)):
        if key in RESUMABLE_CHANGES:
            continue
        if key == "model":
            model_keys = set(saved.get("model", {})) | set(current.get("model", {}))
            for model_key in sorted(model_keys):
                if saved.get("model", {}).get(model_key) != current.get("model", {}).get(model_key):
                    return f"model.{model_key}", saved.get("model", {}).get(model_key), \
                        current.get("model", {}).get(model_key)
        elif saved.get(key) != current.get(key):
            return key, saved.get(key), current.get(key)
    return None
