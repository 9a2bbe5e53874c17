"""Benchmark tasks on disk: a folder of train/dev/test CSVs (`sequence,label`) -> labels, label type, token ids.

The layout of GUE, Genomic Benchmarks and the Nucleotide Transformer tasks: `train.csv`, `dev.csv`, `test.csv`
(each optionally gzipped) with a header naming at least `sequence` and `label`. The label type is read off the
training labels:

    multi-label   any label holds `;` (e.g. `CTCF;POLR2A`): every row is a set of names, multi-hot encoded
    multi-class   every label is an integer, or some label is not a number: one class per distinct value
    regression    every label is a number and some are not integers (e.g. `0.37`)
"""

import csv
import dataclasses
import gzip
import hashlib
import io
import math
import os
import zlib

import numpy as np

LABEL_TYPES = ("multi-class", "multi-label", "regression")
SPLITS = ("train", "dev", "test")
MULTI_LABEL_SEPARATOR = ";"
# The `problem_type` transformers heads use for each label type.
PROBLEM_TYPES = {"multi-class": "single_label_classification", "multi-label": "multi_label_classification",
                 "regression": "regression"}


@dataclasses.dataclass
class Split:
    path: str
    sequences: list
    raw_labels: list
    sha256: str
    labels: np.ndarray = None  # int64 (multi-class), float32 multi-hot (multi-label) or float32 (regression)

    def __len__(self):
        return len(self.sequences)


@dataclasses.dataclass
class Task:
    name: str
    directory: str
    label_type: str
    label_names: list  # class names in label-id order (multi-class, multi-label); ["score"] for regression
    splits: dict

    @property
    def num_labels(self):
        return len(self.label_names)

    @property
    def problem_type(self):
        return PROBLEM_TYPES[self.label_type]

    def describe_data(self):
        """Per split: the file, its SHA-256 and row count (what results.json records)."""
        return {name: {"path": os.path.abspath(split.path), "sha256": split.sha256, "rows": len(split)}
                for name, split in self.splits.items()}


def split_path(task_dir, split):
    """`<task_dir>/<split>.csv` or `<split>.csv.gz`."""
    for name in (f"{split}.csv", f"{split}.csv.gz"):
        path = os.path.join(task_dir, name)
        if os.path.isfile(path):
            return path
    raise ValueError(f"{task_dir}: no {split}.csv or {split}.csv.gz (a task folder holds train, dev and test "
                     "splits with the columns sequence,label)")


def read_split(path):
    """The rows of one split file; its checksum is of the bytes on disk."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as failure:
        raise ValueError(f"{path}: unreadable ({failure.strerror})") from None
    try:
        text = (gzip.decompress(raw) if path.endswith(".gz") else raw).decode("utf-8-sig")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as failure:
        kind = "gzip " if path.endswith(".gz") else ""
        raise ValueError(f"{path}: not a readable {kind}UTF-8 CSV, truncated or corrupt ({failure})") from None
    reader = csv.DictReader(io.StringIO(text))
    try:
        missing = [column for column in ("sequence", "label") if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: no column {' or '.join(missing)} in the header {reader.fieldnames}; "
                             "expected the columns sequence,label")
        sequences, labels = [], []
        for line, row in enumerate(reader, start=2):
            sequence, label = (row["sequence"] or "").strip(), (row["label"] or "").strip()
            if not sequence or not label:
                raise ValueError(f"{path}, line {line}: empty {'sequence' if not sequence else 'label'}")
            if _is_number(label) and not math.isfinite(float(label)):
                raise ValueError(f"{path}, line {line}: label {label!r} is not a finite number (a class name "
                                 "or a finite score is expected)")
            sequences.append(sequence)
            labels.append(label)
    except csv.Error as failure:
        raise ValueError(f"{path}, line {reader.line_num}: malformed CSV ({failure})") from None
    if not sequences:
        raise ValueError(f"{path}: the split is empty (a header and no rows)")
    return Split(path=path, sequences=sequences, raw_labels=labels, sha256=hashlib.sha256(raw).hexdigest())


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_integer(text):
    try:
        int(text)
    except ValueError:
        return False
    return True


def detect_label_type(labels):
    """multi-label, multi-class or regression, from a split's raw label strings (see the module docstring)."""
    if any(MULTI_LABEL_SEPARATOR in label for label in labels):
        return "multi-label"
    if all(_is_integer(label) for label in labels) or not all(_is_number(label) for label in labels):
        return "multi-class"
    return "regression"


def _names(label, label_type):
    if label_type == "multi-label":
        return [name.strip() for name in label.split(MULTI_LABEL_SEPARATOR) if name.strip()]
    return [str(int(label)) if _is_integer(label) else label]  # "01" and "1" are one class


def label_names_of(labels, label_type):
    """Class names in id order: numeric order for integer classes (so 0 stays id 0), else sorted as text."""
    if label_type == "regression":
        return ["score"]
    names = {name for label in labels for name in _names(label, label_type)}
    return sorted(names, key=int) if all(_is_integer(name) for name in names) else sorted(names)


def encode_labels(split, label_type, label_names):
    """Raw label strings -> the array the model trains on; a label the training split never had is an error."""
    if label_type == "regression":
        for line, label in enumerate(split.raw_labels, start=2):
            if not _is_number(label):
                raise ValueError(f"{split.path}, line {line}: label {label!r} is not a number "
                                 "(a regression task needs numeric labels)")
        return np.asarray([float(label) for label in split.raw_labels], dtype=np.float32)
    index = {name: i for i, name in enumerate(label_names)}
    multi_label = label_type == "multi-label"
    encoded = np.zeros((len(split), len(label_names)) if multi_label else len(split),
                       dtype=np.float32 if multi_label else np.int64)
    for row, label in enumerate(split.raw_labels):
        for name in _names(label, label_type):
            if name not in index:
                raise ValueError(f"{split.path}, line {row + 2}: label {name!r} does not occur in the training "
                                 f"split (its labels: {', '.join(label_names[:20])}"
                                 f"{', ...' if len(label_names) > 20 else ''})")
            if multi_label:
                encoded[row, index[name]] = 1.0
            else:
                encoded[row] = index[name]
    return encoded


def load_task(task_dir, label_type=None):
    """Read train/dev/test, detect (or take) the label type, and encode the labels of every split."""
    if not os.path.isdir(task_dir):
        raise ValueError(f"--task-dir {task_dir}: not a folder (expected one holding train/dev/test CSVs)")
    if label_type is not None and label_type not in LABEL_TYPES:
        raise ValueError(f"--label-type {label_type!r}: expected one of {', '.join(LABEL_TYPES)}")
    splits = {name: read_split(split_path(task_dir, name)) for name in SPLITS}
    label_type = label_type or detect_label_type(splits["train"].raw_labels)
    names = label_names_of(splits["train"].raw_labels, label_type)
    if label_type != "regression" and len(names) < 2:
        raise ValueError(f"{splits['train'].path}: every training label is {names[0]!r}; a classification task "
                         "needs at least two classes")
    for split in splits.values():
        split.labels = encode_labels(split, label_type, names)
    return Task(name=os.path.basename(os.path.normpath(task_dir)), directory=os.path.abspath(task_dir),
                label_type=label_type, label_names=names, splits=splits)


def tokenize_split(split, tokenizer, max_tokens, truncate=False):
    """Token ids per sequence ([CLS] ... [SEP]); longer than `max_tokens` is an error unless `truncate`."""
    encoded = tokenizer(split.sequences, add_special_tokens=True, verbose=False)["input_ids"]  # we report length
    too_long = [(row, len(ids)) for row, ids in enumerate(encoded) if len(ids) > max_tokens]
    if too_long and not truncate:
        row, length = max(too_long, key=lambda item: item[1])
        raise ValueError(f"{split.path}: {len(too_long)} sequence(s) longer than the model's {max_tokens} tokens "
                         f"(the longest, line {row + 2}, has {length} with [CLS]/[SEP]); pass --truncate to cut "
                         "them to the model's maximum")
    if too_long:
        # keep [CLS] + the first bases + [SEP]
        encoded = [ids if len(ids) <= max_tokens else ids[:max_tokens - 1] + ids[-1:] for ids in encoded]
    return encoded
