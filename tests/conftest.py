"""Shared fixtures. Imports only torch, transformers and this repo, so the compat venv (transformers 4.48) can use it."""

import os
import sys

import pytest
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from modeling_nucel import NucELConfig  # noqa: E402

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


@pytest.fixture
def padded_batch():
    """Rows of 80, 50 and 12 real tokens padded to 80: longer than the 16-token window, with heavy padding."""
    return dna_batch(lengths=[80, 50, 12], length=80)


# ----------------------------------------------------------------------------------------- fresh-process loading
# Source prepended to every fresh-process loader: the saved folder must stand alone, so this repo is unimportable.
BLOCK_REPO_IMPORTS = r"""
import sys

class BlockRepoPackages:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("modeling_nucel", "tokenization", "training", "hub_cards"):
            raise ImportError("blocked import of " + name)

sys.meta_path.insert(0, BlockRepoPackages())
"""


def interpreters():
    """This Python, plus NUCEL_OTHER_PYTHON (the other transformers version) when `make test-compat` sets it."""
    found = [pytest.param(sys.executable, id="this-python")]
    if os.environ.get("NUCEL_OTHER_PYTHON"):
        found.append(pytest.param(os.environ["NUCEL_OTHER_PYTHON"], id="other-python"))
    return found


def run_fresh(python, loader_source, args, workdir):
    """Run `loader_source` in a new offline process that cannot import this repo; returns its stdout."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(workdir / "modules"))
    result = subprocess.run([python, "-c", BLOCK_REPO_IMPORTS + loader_source, *map(str, args)], cwd=workdir,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
