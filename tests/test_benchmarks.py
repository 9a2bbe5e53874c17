"""Benchmark scripts run as documented (`python benchmarks/X.py`); tiny arguments, no timing asserted."""

import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT


@pytest.mark.parametrize("script, args", [
    ("train_step.py", ["--hidden-size", "32", "--layers", "2", "--heads", "2", "--seq-len", "64", "--batch-size", "2",
                       "--steps", "1", "--warmup", "0"]),
    ("tokenize.py", ["--repeats", "1", "--hf-mbp", "0.05"]),
    ("share_embeddings.py", ["--steps", "2", "--batch-size", "2", "--crop", "64"]),
    ("pretrain_throughput.py", ["--steps", "2", "--block", "1", "--per-device-batch-size", "2"]),
    ("inference_throughput.py", ["--shapes", "tiny", "--bases", "2000", "--variants", "4", "--memory-mbp", "0.05"]),
])
def test_benchmark_script_prints_its_table(script, args):
    result = subprocess.run([sys.executable, os.path.join("benchmarks", script), *args], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "|---|" in result.stdout
