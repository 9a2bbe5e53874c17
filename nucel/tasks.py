"""Benchmark tasks -> labels, label type, token ids. A task is one of:

- a folder of split files, the GUE / Genomic Benchmarks / Nucleotide Transformer layouts: `train` and `test`, and
  `dev` when there is one, each `.csv` or `.tsv` (tab-separated), optionally gzipped, with a header naming the
  sequence and label columns (default `sequence` and `label`; any names with `sequence_column`/`label_column`);
- a `datasets.load_dataset` path: a Hub dataset id (offline: from the local datasets cache) or a local dataset
  folder (Parquet, JSON, Arrow, ...), with `train` and `test` splits and `validation`/`dev` when there is one.

Without a dev split, one is carved from train: `dev_fraction` of its rows, chosen with `split_seed`, recorded with
the task (results.json). The label type is read off the training labels:

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

from nucel.files import is_hub_id

LABEL_TYPES = ("multi-class", "multi-label", "regression")
SPLITS = ("train", "dev", "test")
REQUIRED_SPLITS = ("train", "test")
SPLIT_FILE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")
DATASET_DEV_SPLITS = ("validation", "dev", "valid")  # what load_dataset repositories call the dev split
DEFAULT_DEV_FRACTION, DEFAULT_SPLIT_SEED = 0.1, 42
MULTI_LABEL_SEPARATOR = ";"
# The `problem_type` transformers heads use for each label type.
PROBLEM_TYPES = {"multi-class": "single_label_classification", "multi-label": "multi_label_classification",
                 "regression": "regression"}


@dataclasses.dataclass
class Split:
    path: str  # the split file, or "<dataset>:<split>" for a load_dataset split
    sequences: list
    raw_labels: list
    sha256: str
    labels: np.ndarray = None  # int64 (multi-class), float32 multi-hot (multi-label) or float32 (regression)
    from_dataset: bool = False
    row_names: list = None  # per row, where it is in its source ("line 7", "row 5"); default: file lines

    def __len__(self):
        return len(self.sequences)

    def row_name(self, index):
        return self.row_names[index] if self.row_names else f"line {index + 2}"

    def where(self, index):
        """`<source>, line N` (or `row N`) of row `index`, for error messages."""
        return f"{self.path}, {self.row_name(index)}"


@dataclasses.dataclass
class Task:
    name: str
    directory: str
    label_type: str
    label_names: list  # class names in label-id order (multi-class, multi-label); ["score"] for regression
    splits: dict
    carved_dev: dict = None  # how dev was cut from train when the task has none: fraction, seed, rows

    @property
    def num_labels(self):
        return len(self.label_names)

    @property
    def problem_type(self):
        return PROBLEM_TYPES[self.label_type]

    def describe_data(self):
        """Per split: where it came from, its SHA-256 and row count (what results.json records); a carved dev
        split says so."""
        described = {name: {"path": split.path if split.from_dataset else os.path.abspath(split.path),
                            "sha256": split.sha256, "rows": len(split)} for name, split in self.splits.items()}
        if self.carved_dev:
            described["dev"]["carved_from_train"] = dict(self.carved_dev)
        return described


def find_split_file(task_dir, split):
    """`<task_dir>/<split>.csv|.tsv` (optionally .gz), or None."""
    found = [os.path.join(task_dir, split + suffix) for suffix in SPLIT_FILE_SUFFIXES
             if os.path.isfile(os.path.join(task_dir, split + suffix))]
    if len(found) > 1:
        raise ValueError(f"{task_dir}: {' and '.join(os.path.basename(f) for f in found)} both hold the {split} "
                         "split; keep one")
    return found[0] if found else None


def split_path(task_dir, split):
    """The file of a required split of a task folder."""
    path = find_split_file(task_dir, split)
    if path is None:
        raise ValueError(f"{task_dir}: no {split}.csv or {split}.csv.gz (nor .tsv/.tsv.gz): a task folder holds "
                         "train and test splits (and dev, or one is carved from train)")
    return path


def task_files(task_dir):
    """{split: file} of a task folder: train and test required, dev when present."""
    files = {split: split_path(task_dir, split) for split in REQUIRED_SPLITS}
    dev = find_split_file(task_dir, "dev")
    return {"train": files["train"], **({"dev": dev} if dev else {}), "test": files["test"]}


def check_row(where, sequence, label):
    if not sequence or not label:
        raise ValueError(f"{where}: empty {'sequence' if not sequence else 'label'}")
    if _is_number(label) and not math.isfinite(float(label)):
        raise ValueError(f"{where}: label {label!r} is not a finite number (a class name or a finite score is "
                         "expected)")


def read_split(path, sequence_column="sequence", label_column="label"):
    """The rows of one split file (stdlib csv: errors name the line, labels stay the text they were written as);
    its checksum is of the bytes on disk."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as failure:
        raise ValueError(f"{path}: unreadable ({failure.strerror})") from None
    try:
        text = (gzip.decompress(raw) if path.endswith(".gz") else raw).decode("utf-8-sig")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as failure:
        kind = "gzip " if path.endswith(".gz") else ""
        table = "TSV" if path.endswith((".tsv", ".tsv.gz")) else "CSV"
        raise ValueError(f"{path}: not a readable {kind}UTF-8 {table}, truncated or corrupt ({failure})") from None
    tab = path.endswith((".tsv", ".tsv.gz"))
    reader = csv.DictReader(io.StringIO(text), delimiter="\t" if tab else ",")
    try:
        missing = [column for column in (sequence_column, label_column) if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: no column {' or '.join(missing)} in the header {reader.fieldnames}; "
                             f"expected the columns {sequence_column},{label_column} (name others with "
                             "--sequence-column / --label-column)")
        sequences, labels = [], []
        for line, row in enumerate(reader, start=2):
            sequence, label = (row[sequence_column] or "").strip(), (row[label_column] or "").strip()
            check_row(f"{path}, line {line}", sequence, label)
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
        for row, label in enumerate(split.raw_labels):
            if not _is_number(label):
                raise ValueError(f"{split.where(row)}: label {label!r} is not a number "
                                 "(a regression task needs numeric labels)")
        return np.asarray([float(label) for label in split.raw_labels], dtype=np.float32)
    index = {name: i for i, name in enumerate(label_names)}
    multi_label = label_type == "multi-label"
    encoded = np.zeros((len(split), len(label_names)) if multi_label else len(split),
                       dtype=np.float32 if multi_label else np.int64)
    for row, label in enumerate(split.raw_labels):
        for name in _names(label, label_type):
            if name not in index:
                raise ValueError(f"{split.where(row)}: label {name!r} does not occur in the training "
                                 f"split (its labels: {', '.join(label_names[:20])}"
                                 f"{', ...' if len(label_names) > 20 else ''})")
            if multi_label:
                encoded[row, index[name]] = 1.0
            else:
                encoded[row] = index[name]
    return encoded


def rows_sha256(sequences, labels):
    """Checksum of a split's content, for splits that are not a file (load_dataset)."""
    digest = hashlib.sha256()
    for sequence, label in zip(sequences, labels):
        digest.update(f"{sequence}\t{label}\n".encode())
    return digest.hexdigest()


def read_dataset_splits(source, sequence_column, label_column, dataset_config=None):
    """{split: Split} of a `datasets.load_dataset` path (Hub id or local dataset folder)."""
    try:
        import datasets  # noqa: PLC0415  (heavy, with pyarrow: only a Hub dataset or dataset folder needs it)
    except ImportError:  # a core install: publish re-reading a fine-tuning task gives its card no examples
        raise ValueError(f"--task-dir {source}: reading a dataset (not a folder of split files) needs the [train] "
                         "extra: pip install 'nucel[train]'") from None

    offline = datasets.config.HF_HUB_OFFLINE or getattr(datasets.config, "HF_DATASETS_OFFLINE", False)
    try:
        loaded = datasets.load_dataset(source, dataset_config)
    except Exception as failure:  # noqa: BLE001  (datasets raises many types; the user needs one line either way)
        first = (str(failure).strip().splitlines() or [type(failure).__name__])[0]
        where = (" (HF_DATASETS_OFFLINE/HF_HUB_OFFLINE is set: only datasets already in the local datasets cache "
                 "load; run once online, or point --task-dir at a folder of split files)") if offline else ""
        raise ValueError(f"--task-dir {source}: datasets.load_dataset failed{where}: {first}") from None
    names = {"train": "train", "test": "test"}
    dev = next((name for name in DATASET_DEV_SPLITS if name in loaded), None)
    if dev:
        names["dev"] = dev
    missing = [name for name in REQUIRED_SPLITS if name not in loaded]
    if missing:
        raise ValueError(f"--task-dir {source}: the dataset has splits {sorted(loaded)}; a task needs train and "
                         "test (and validation/dev, or one is carved from train)")
    splits = {}
    for ours, theirs in names.items():
        table = loaded[theirs]
        where = f"{source}:{theirs}"
        absent = [c for c in (sequence_column, label_column) if c not in table.column_names]
        if absent:
            raise ValueError(f"{where}: no column {' or '.join(absent)} in {table.column_names}; name them with "
                             "--sequence-column / --label-column")
        sequences = [str(value or "").strip() for value in table[sequence_column]]
        labels = [(str(value) if value is not None else "").strip() for value in table[label_column]]
        for row, (sequence, label) in enumerate(zip(sequences, labels)):
            check_row(f"{where}, row {row}", sequence, label)
        if not sequences:
            raise ValueError(f"{where}: the split is empty")
        splits[ours] = Split(path=where, sequences=sequences, raw_labels=labels,
                             sha256=rows_sha256(sequences, labels), from_dataset=True,
                             row_names=[f"row {i}" for i in range(len(sequences))])
    return splits


def carve_dev(train, fraction, seed):
    """(train without dev, dev): `fraction` of train's rows, drawn with `seed`, as the dev split."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"--dev-fraction {fraction}: expected a fraction in (0, 1)")
    count = int(round(len(train) * fraction))
    if count < 1 or count >= len(train):
        raise ValueError(f"{train.path}: {len(train)} training rows cannot give a dev split of {fraction:g} (at "
                         "least one row each)")
    order = np.random.default_rng(seed).permutation(len(train))
    chosen = set(order[:count].tolist())

    def subset(keep):
        rows = [i for i in range(len(train)) if (i in chosen) == keep]
        sequences = [train.sequences[i] for i in rows]
        labels = [train.raw_labels[i] for i in rows]
        # the checksum stays the source's: with the recorded fraction and seed it pins these rows exactly
        return Split(path=train.path, sequences=sequences, raw_labels=labels, sha256=train.sha256,
                     from_dataset=train.from_dataset,
                     row_names=[train.row_name(i) for i in rows])

    return subset(False), subset(True)


def load_task(task_dir, label_type=None, sequence_column="sequence", label_column="label",
              dev_fraction=DEFAULT_DEV_FRACTION, split_seed=DEFAULT_SPLIT_SEED, dataset_config=None):
    """Read the splits (carving dev from train when there is none), detect (or take) the label type, and encode
    the labels of every split."""
    if label_type is not None and label_type not in LABEL_TYPES:
        raise ValueError(f"--label-type {label_type!r}: expected one of {', '.join(LABEL_TYPES)}")
    if os.path.isdir(task_dir) and find_split_file(task_dir, "train"):
        splits = {name: read_split(path, sequence_column, label_column)
                  for name, path in task_files(task_dir).items()}
        name, directory = os.path.basename(os.path.normpath(task_dir)), os.path.abspath(task_dir)
    elif os.path.isdir(task_dir) or is_hub_id(task_dir):
        splits = read_dataset_splits(task_dir, sequence_column, label_column, dataset_config)
        name = os.path.basename(os.path.normpath(task_dir)) + (f"_{dataset_config}" if dataset_config else "")
        directory = os.path.abspath(task_dir) if os.path.isdir(task_dir) else task_dir
    else:
        raise ValueError(f"--task-dir {task_dir}: neither a folder (train/test split files, or a dataset folder) "
                         "nor a Hub dataset id ORG/NAME")
    carved = None
    if "dev" not in splits:
        splits["train"], dev = carve_dev(splits["train"], dev_fraction, split_seed)
        splits = {"train": splits["train"], "dev": dev, "test": splits["test"]}
        carved = {"fraction": dev_fraction, "seed": split_seed, "rows": len(dev)}
    label_type = label_type or detect_label_type(splits["train"].raw_labels)
    names = label_names_of(splits["train"].raw_labels, label_type)
    if label_type != "regression" and len(names) < 2:
        raise ValueError(f"{splits['train'].path}: every training label is {names[0]!r}; a classification task "
                         "needs at least two classes")
    for split in splits.values():
        split.labels = encode_labels(split, label_type, names)
    return Task(name=name, directory=directory, label_type=label_type, label_names=names, splits=splits,
                carved_dev=carved)


def tokenize_split(split, tokenizer, max_tokens, truncate=False):
    """Token ids per sequence ([CLS] ... [SEP]); longer than `max_tokens` is an error unless `truncate`."""
    encoded = tokenizer(split.sequences, add_special_tokens=True, verbose=False)["input_ids"]  # we report length
    too_long = [(row, len(ids)) for row, ids in enumerate(encoded) if len(ids) > max_tokens]
    if too_long and not truncate:
        row, length = max(too_long, key=lambda item: item[1])
        raise ValueError(f"{split.path}: {len(too_long)} sequence(s) longer than the model's {max_tokens} tokens "
                         f"(the longest, {split.row_name(row)}, has {length} with [CLS]/[SEP]); pass --truncate to "
                         "cut them to the model's maximum")
    if too_long:
        # keep [CLS] + the first bases + [SEP]
        encoded = [ids if len(ids) <= max_tokens else ids[:max_tokens - 1] + ids[-1:] for ids in encoded]
    return encoded
