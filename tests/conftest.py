"""Shared fixtures. Imports only torch, transformers and this repo, so the compat venv (transformers 4.48) can use it."""

import os
import sys

import pytest
import torch

from nucel.modeling_nucel import NucELConfig

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")

TINY = dict(
    hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4, local_attention=16,
    max_position_embeddings=256, generator_hidden_size=32, generator_num_hidden_layers=2,
    generator_num_attention_heads=2, generator_intermediate_size=48,
)


def tiny_config(**overrides):
    """A 4-layer, 64-wide NucEL config with a 16-token window: fast, and long inputs exercise the window."""
    return NucELConfig(**{**TINY, **overrides})


@pytest.fixture
def make_config():
    return tiny_config


def dna_batch(batch=3, length=80, lengths=None, seed=0):
    """[CLS] random ACGT(N) [SEP] [PAD]... with per-row real lengths; returns (input_ids, attention_mask)."""
    generator = torch.Generator().manual_seed(seed)
    lengths = lengths or [length] * batch
    input_ids = torch.zeros(len(lengths), length, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, n in enumerate(lengths):
        input_ids[row, 1:n - 1] = torch.randint(5, 10, (n - 2,), generator=generator)
        input_ids[row, 0], input_ids[row, n - 1] = 2, 3
        attention_mask[row, :n] = 1
    return input_ids, attention_mask


def write_fasta(path, records, width=60):
    """A gzip FASTA of (name, sequence) records, `width` bases per line."""
    import gzip

    with gzip.open(path, "wt") as handle:
        for name, sequence in records:
            handle.write(f">{name}\n")
            for i in range(0, len(sequence), width):
                handle.write(sequence[i:i + width] + "\n")
    return str(path)


def strong_site(motif, rng):
    """A site drawn from a motif's PWM sharpened (p^3), like the best sites of a ChIP-seq peak set."""
    sharp = motif.probabilities ** 3
    return "".join("ACGT"[rng.choice(4, p=row / row.sum())] for row in sharp)


@pytest.fixture
def padded_batch():
    """Rows of 80, 50 and 12 real tokens padded to 80: longer than the 16-token window, with heavy padding."""
    return dna_batch(lengths=[80, 50, 12], length=80)


# ----------------------------------------------------------------------------------------- fresh-process loading
from nucel.fresh_process import run_isolated  # noqa: E402  (standard library only)


def interpreters():
    """This Python, plus NUCEL_OTHER_PYTHON (the other transformers version) when `make test-compat` sets it."""
    found = [pytest.param(sys.executable, id="this-python")]
    if os.environ.get("NUCEL_OTHER_PYTHON"):
        found.append(pytest.param(os.environ["NUCEL_OTHER_PYTHON"], id="other-python"))
    return found


def saved_inputs(root):
    """A padded batch (rows of 60 and 33 real tokens) saved as root/inputs.pt for a fresh-process loader."""
    input_ids, attention_mask = dna_batch(lengths=[60, 33], length=60)
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    torch.save(inputs, root / "inputs.pt")
    return inputs


def run_fresh(python, loader_source, args, workdir):
    """Run `loader_source` in a new offline process that cannot import this repo; returns its stdout."""
    result = run_isolated(loader_source, args, workdir, python, env={"HF_MODULES_CACHE": str(workdir / "modules")},
                          timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# ----------------------------------------------------------------------------------------- benchmark task folders
MOTIF = "TATAAA"


def write_task(directory, splits, gzipped=True, header=("sequence", "label")):
    """A task folder: {split: [(sequence, label), ...]} written as <split>.csv(.gz) with `header`."""
    import csv
    import gzip
    import io

    os.makedirs(directory, exist_ok=True)
    for split, rows in splits.items():
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(header)
        writer.writerows(rows)
        path = os.path.join(directory, f"{split}.csv" + (".gz" if gzipped else ""))
        with (gzip.open(path, "wt") if gzipped else open(path, "w")) as handle:
            handle.write(text.getvalue())
    return str(directory)


def motif_rows(count, length=40, seed=0, label_type="multi-class"):
    """Random DNA; multi-class: 1 when TATAAA is planted; multi-label: `TATA`/`GC` for TATAAA / GGGCGG planted;
    regression: the number of planted TATAAA copies (0-2) plus 0.1 x GC fraction."""
    import random

    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        bases = [rng.choice("ACGT") for _ in range(length)]
        tata, gc = rng.random() < 0.5, rng.random() < 0.5
        copies = rng.randint(0, 2) if label_type == "regression" else int(tata)
        for copy in range(copies):
            start = 2 + copy * 18 + rng.randint(0, 6)
            bases[start:start + 6] = MOTIF
        if label_type == "multi-label" and gc:
            start = rng.randint(26, length - 8)
            bases[start:start + 6] = "GGGCGG"
        sequence = "".join(bases)
        if label_type == "multi-class":
            label = str(int(tata))
        elif label_type == "multi-label":
            label = ";".join(name for name, on in (("TATA", tata), ("GC", gc)) if on) or "none"
        else:
            label = f"{copies + 0.1 * sum(b in 'GC' for b in sequence) / length:.4f}"
        rows.append((sequence, label))
    return rows


def motif_task(directory, label_type="multi-class", sizes=(192, 64, 64), length=40):
    return write_task(directory, {split: motif_rows(n, length, seed, label_type)
                                  for seed, (split, n) in enumerate(zip(("train", "dev", "test"), sizes))})


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """A pretraining-run-like folder with discriminator/ and generator/ exports of a tiny NucEL (+ tokenizer)."""
    from nucel.modeling_nucel import NucELForPreTraining
    from nucel.tokenization.hf_tokenizers import load_tokenizer, save_tokenizer

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny-export")
    config = tiny_config()
    paths = NucELForPreTraining(config).save_components(str(root))
    for path in paths.values():
        save_tokenizer(load_tokenizer("nucleotide", model_max_length=config.max_position_embeddings), path)
    return root
