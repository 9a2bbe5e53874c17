"""Shared by the benchmark scripts: wall-clock timing around CUDA's asynchronous kernels (calls interleaved so that
machine noise hits every contender alike) and the random DNA they feed the models."""

import os
import statistics
import time

import torch

from nucel.tokenization import alphabet
from nucel.training.pretraining.masking import uniform_mask

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_GENOMES = os.path.join(REPO_ROOT, "..", "shared", "data", "genomes")


def synchronize(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def interleaved_medians(device, calls, steps, warmup):
    """Median seconds of each named call over `steps` rounds, after `warmup` untimed rounds."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    times = {name: [] for name in calls}
    for _ in range(steps):
        for name, call in calls.items():
            synchronize(device)
            start = time.perf_counter()
            call()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def random_windows(batch_size, seq_len, seed=0):
    """(batch, seq) ids: [CLS] random A/C/G/T [SEP]."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(min(alphabet.NUCLEOTIDE_IDS), max(alphabet.NUCLEOTIDE_IDS) + 1, (batch_size, seq_len),
                        generator=generator)
    ids[:, 0], ids[:, -1] = alphabet.CLS_ID, alphabet.SEP_ID
    return ids


def masked_batch(config, batch_size, seq_len, device, seed=0):
    """A pretraining batch: random windows masked uniformly at the config's rate (MLM labels)."""
    inputs, labels = uniform_mask(random_windows(batch_size, seq_len, seed), config.mask_rate,
                                  torch.Generator().manual_seed(seed + 1))
    return {"input_ids": inputs.to(device), "labels": labels.to(device)}
