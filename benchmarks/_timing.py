"""Timing shared by the benchmark scripts: wall-clock around CUDA's asynchronous kernels, calls interleaved so that
machine noise hits every contender alike."""

import statistics
import time

import torch


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
