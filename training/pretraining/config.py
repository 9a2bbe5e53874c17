"""Pretraining configuration: a YAML preset (training/configs/*.yaml) plus command-line overrides.

Top-level keys are the fields of `PretrainConfig`; the `model:` section holds `NucELConfig` arguments. Any key can
be overridden on the command line as `--key value` (dashes or underscores), model keys included
(`--hidden-size 128`); values are parsed as YAML, so `--fasta [a.fa, b.fa]` and `--bf16 true` work.
"""

import dataclasses
import math
import os
import typing
from typing import Optional

import yaml
from transformers import SchedulerType

from nucel.modeling_nucel import NucELConfig
from nucel.tokenization import alphabet

from . import corpus as corpora
from .masking import STRATEGIES, Masker, expected_mask_fraction
from .objectives import OBJECTIVES

ATTENTION_CHOICES = ("auto", "eager", "sdpa", "flex_attention", "flash_attention_2")
# A masking that reaches less than this share of `mask_rate` in the configured crops (spans cut at the crop's
# ends) is refused: the run would silently train on another recipe.
MIN_MASK_RATE_SHARE = 0.9
# Keys that may change when resuming: they do not change what the model computes or which data it sees.
RESUMABLE_CHANGES = frozenset({
    "max_steps", "output_dir", "resume", "logging_steps", "eval_steps", "eval_batches", "save_steps",
    "save_total_limit", "report_to", "num_workers", "fasta", "genome_store", "progress_bar", "compute_estimate",
})


@dataclasses.dataclass
class PretrainConfig:
    # data: FASTA files (or a corpus manifest of genomes) -> genome store -> windows
    fasta: list = dataclasses.field(default_factory=list)
    corpus: dict = dataclasses.field(default_factory=dict)  # genomes with weights (corpus.py); a manifest's path
    genome_store: Optional[str] = None          # default: <output_dir>/genome-store
    window_length: int = 1224
    window_overlap: int = 100
    crop_length: int = 1024
    max_n_fraction: float = 0.1
    max_repeat_fraction: float = 1.0            # windows with more soft-masked (lower-case) bases are dropped
    repeat_weight: float = 1.0                  # loss weight of soft-masked positions, both objectives (1: plain)
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
    progress_bar: bool = True                   # false: no bar (--progress-bar on/off sets it; see nucel/console.py)
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
        if self.attn_implementation not in ATTENTION_CHOICES:
            fail("attn_implementation", "one of " + ", ".join(ATTENTION_CHOICES))
        if self.lr_scheduler not in {item.value for item in SchedulerType}:
            fail("lr_scheduler", "a transformers.get_scheduler name, e.g. linear, cosine, constant_with_warmup")
        for field in ("max_steps", "global_batch_size", "per_device_batch_size", "logging_steps", "eval_steps",
                      "save_steps", "save_total_limit", "eval_batches", "crop_length", "window_length",
                      "randommask_phases", "randommask_min_span"):
            if getattr(self, field) < 1:
                fail(field, "a positive integer")
        for field in ("window_overlap", "warmup_steps", "num_workers", "randommask_growth"):
            if getattr(self, field) < 0:
                fail(field, "an integer >= 0")
        if self.window_overlap >= self.window_length:
            fail("window_overlap", f"less than window_length={self.window_length}")
        if self.crop_length > self.window_length:
            fail("crop_length", f"at most window_length={self.window_length}")
        if not 0.0 < self.mask_rate < 1.0:
            fail("mask_rate", "a fraction in (0, 1)")
        for field in ("reverse_complement_prob", "max_n_fraction", "max_repeat_fraction"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                fail(field, "a probability in [0, 1]")
        if not 0.0 <= self.validation_fraction < 1.0:
            fail("validation_fraction", "a fraction in [0, 1)")
        if self.learning_rate <= 0:
            fail("learning_rate", "a positive number")
        for field in ("weight_decay", "max_grad_norm", "adam_epsilon", "repeat_weight"):
            if getattr(self, field) < 0:
                fail(field, "a number >= 0")
        for field in ("adam_beta1", "adam_beta2"):
            if not 0.0 <= getattr(self, field) < 1.0:
                fail(field, "a number in [0, 1)")
        if self.span_mean_length < 1:
            fail("span_mean_length", "a number >= 1 (tokens)")
        if not self.fasta and not self.genome_store:
            fail("fasta", "one or more FASTA files (--fasta F ...), a --corpus manifest or a prepared genome_store")
        model = self.model_config()
        if self.crop_length + 2 > model.max_position_embeddings:
            fail("crop_length", f"at most max_position_embeddings - 2 = {model.max_position_embeddings - 2} "
                                "([CLS] and [SEP] take two positions)")
        if model.vocab_size < alphabet.VOCAB_SIZE:
            raise ValueError(f"config model.vocab_size={model.vocab_size}: expected at least the nucleotide "
                             f"alphabet's {alphabet.VOCAB_SIZE} tokens (tokenization.alphabet)")
        self._check_masking_reaches_rate()
        return self

    def _check_masking_reaches_rate(self):
        """Spans cut at the crop's ends mask less than `mask_rate`; refuse a recipe that loses more than 10%."""
        masker = Masker(self.masking, self.mask_rate, total_steps=self.max_steps,
                        span_mean_length=self.span_mean_length, randommask_phases=self.randommask_phases,
                        randommask_min_span=self.randommask_min_span, randommask_growth=self.randommask_growth)
        for step, lengths in masker.span_length_distributions():
            reached = expected_mask_fraction(self.mask_rate, lengths, self.crop_length)
            if reached < MIN_MASK_RATE_SHARE * self.mask_rate:
                longest = len(lengths)
                raise ValueError(
                    f"config masking={self.masking}: spans up to {longest} tokens in {self.crop_length}-token crops "
                    f"mask {reached:.1%} of tokens at step {step}, not mask_rate={self.mask_rate:.0%} (spans are "
                    "cut at the crop's ends); use shorter spans (randommask_min_span, randommask_growth, "
                    "span_mean_length) or a longer crop_length")

    def warnings(self):
        """Settings that are valid but probably not meant: one line each (pretrain.py prints them)."""
        found = []
        if self.warmup_steps >= self.max_steps:
            found.append(f"warmup_steps={self.warmup_steps} >= max_steps={self.max_steps}: the learning rate never "
                         f"reaches learning_rate={self.learning_rate:g} (the run ends during warmup); pass "
                         f"--warmup-steps {max(1, self.max_steps // 10)} for a tenth of the run")
        return found

    def model_config(self, attn_implementation=None):
        """The NucELConfig this run trains (mask rate recorded in it, so exports document the recipe), attending
        with `attn_implementation` (None: the model's default, sdpa)."""
        try:
            return NucELConfig(**{**self.model, "mask_rate": self.mask_rate}, attn_implementation=attn_implementation)
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
FIELD_TYPES = typing.get_type_hints(PretrainConfig)
MODEL_DEFAULTS = NucELConfig().to_dict()
MODEL_FIELDS = frozenset(MODEL_DEFAULTS)


def describe_keys():
    """Every config key with its default, for --help: the run's keys, then the model's (NucELConfig)."""
    lines = ["config keys (YAML top level, or --key value on the command line), with their defaults:"]
    for name, field in FIELDS.items():
        if name == "model":
            continue
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        lines.append(f"  {name}: {default!r}")
    lines.append("model keys (YAML under model:, or --key value), NucELConfig arguments with their defaults "
                 "(generator_*: half the discriminator unless set):")
    skipped = set(MODEL_DEFAULTS) - set(NucELConfig.__init__.__code__.co_varnames)
    lines += [f"  {name}: {MODEL_DEFAULTS[name]!r}" for name in sorted(MODEL_FIELDS - skipped)]
    return "\n".join(lines)


def coerce(key, value, expected):
    """`value` (from YAML or the command line) as the `expected` type, or a ValueError naming `key`.

    YAML 1.1 reads `1e-3` (no dot) as a string and `5` as an int; both are meant as numbers here."""
    optional = typing.get_origin(expected) is typing.Union and type(None) in typing.get_args(expected)
    if optional:
        if value is None:
            return None
        expected = next(arg for arg in typing.get_args(expected) if arg is not type(None))

    def fail(what):
        raise ValueError(f"config {key}={value!r}: expected {what}")

    if expected is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.strip().lower() in ("true", "yes", "on")
        fail("true or false")
    if expected in (int, float):
        if isinstance(value, bool):
            fail("an integer" if expected is int else "a number")
        number = value
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                fail("an integer" if expected is int else "a number")
        if not isinstance(number, (int, float)) or not math.isfinite(number):
            fail("an integer" if expected is int else "a finite number")
        if expected is int:
            if float(number) != int(number):
                fail("an integer")
            return int(number)
        return float(number)
    if expected is str:
        if isinstance(value, str):
            return value
        fail("text")
    if expected is list:
        if isinstance(value, str):
            return [value]
        if isinstance(value, (list, tuple)):
            return list(value)
        fail("a list")
    if expected is dict:
        if isinstance(value, dict):
            return value
        fail("a mapping")
    return value


def coerce_model_value(key, value):
    """A NucELConfig argument as the type of its default (numbers stay numbers, lists stay lists)."""
    default = MODEL_DEFAULTS.get(key)
    if value is None or default is None:
        return value
    for kind in (bool, int, float, str, list):  # bool before int: True is an int in Python
        if isinstance(default, kind):
            return coerce(f"model.{key}", value, kind)
    return value


def read_yaml(path):
    """The mapping in a YAML config file; a syntax error names the file and line."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: config file not found")
    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle)
    except yaml.YAMLError as failure:
        mark = getattr(failure, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(failure, "problem", None) or str(failure).splitlines()[0]
        raise ValueError(f"{path}{where}: YAML syntax error ({problem})") from None
    except (OSError, UnicodeDecodeError) as failure:
        raise ValueError(f"{path}: unreadable config file ({failure})") from None
    if values is None:
        raise ValueError(f"{path}: the config file is empty; start from a preset such as training/configs/tiny.yaml")
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of config keys")
    return values


def load_config(path=None, overrides=()):
    """`path` (YAML) then `overrides` (("key", "yaml value") pairs) on top of the defaults; typed and validated."""
    if path is None:
        raise ValueError("--config: required (a preset such as training/configs/tiny.yaml; the defaults alone "
                         "are the published 92M-parameter shape)")
    values = read_yaml(path)
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; expected keys of "
                         "nucel.training.pretraining.config.PretrainConfig")
    if values.get("model") is not None and not isinstance(values["model"], dict):
        raise ValueError(f"{path}: model: expected a mapping of NucELConfig arguments")
    values["model"] = dict(values.get("model") or {})
    unknown_model = sorted(set(values["model"]) - MODEL_FIELDS)
    if unknown_model:
        raise ValueError(f"{path}: unknown model key(s) {unknown_model}; expected NucELConfig arguments")
    for key, text in overrides:
        name = key.lstrip("-").replace("-", "_")
        try:
            value = yaml.safe_load(text) if isinstance(text, str) else text
        except yaml.YAMLError:
            value = text  # not YAML (e.g. an unbalanced bracket): the plain string, typed below
        if name in FIELDS:
            values[name] = value
        elif name in MODEL_FIELDS:
            values["model"][name] = value
        else:
            raise ValueError(f"--{key.lstrip('-')}: not a key of the pretraining config or of NucELConfig")
    manifest_file = values["corpus"] if isinstance(values.get("corpus"), str) else None
    if manifest_file:  # --corpus corpus.yaml: read here, kept resolved in the config (and so in every checkpoint)
        values["corpus"] = read_yaml(manifest_file)
    typed = {name: coerce(name, value, FIELD_TYPES[name]) for name, value in values.items() if name != "model"}
    typed["model"] = {name: coerce_model_value(name, value) for name, value in values["model"].items()}
    if typed.get("corpus"):
        if typed.get("fasta"):
            raise ValueError("config corpus and fasta: both given; list the FASTA files in the corpus manifest "
                             "(its genomes' fasta) or give --fasta alone")
        if typed.get("genome_store"):
            raise ValueError("config corpus and genome_store: a corpus builds its own store (in <output_dir>/"
                             "genome-store); drop genome_store")
        # its files' paths are relative to the file that lists them: the manifest, or the config holding `corpus:`
        where = manifest_file or f"{path} corpus"
        typed["corpus"] = corpora.resolve(typed["corpus"], os.path.dirname(os.path.abspath(manifest_file or path)),
                                          where)
        typed["fasta"] = corpora.fasta_files(typed["corpus"])
    return PretrainConfig(**typed).validate()


def default_value(key):
    field = FIELDS.get(key)
    if field is None:
        return None
    return field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default


def incompatible_change(saved, current):
    """The first key (dotted for model keys) whose change makes `saved` -> `current` not a resume, or None. A key
    the saved config lacks (written before the key existed) counts as its default."""
    saved = {**{key: default_value(key) for key in current if key not in saved}, **saved}
    saved["corpus"], current = corpora.identity(saved.get("corpus")), {
        **current, "corpus": corpora.identity(current.get("corpus"))}
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
