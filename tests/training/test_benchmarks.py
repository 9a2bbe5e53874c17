"""Benchmark scripts run as documented (`python benchmarks/X.py`); tiny arguments, no timing asserted."""

import importlib.util
import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT


@pytest.mark.slow
@pytest.mark.parametrize("script, args", [
    ("train_step.py", ["--hidden-size", "32", "--layers", "2", "--heads", "2", "--seq-len", "64", "--batch-size", "2",
                       "--steps", "1", "--warmup", "0"]),
    ("genome_encoding.py", ["--repeats", "1", "--hf-mbp", "0.05"]),
    ("share_embeddings.py", ["--steps", "2", "--batch-size", "2", "--crop", "64"]),
    ("pretrain_throughput.py", ["--steps", "2", "--block", "1", "--per-device-batch-size", "2"]),
    ("long_inputs.py", ["--compare-lengths", "600", "--growth-lengths", "300", "600", "--repeats", "1"]),
    ("gpu.py", ["--device", "cpu", "--seq-len", "128", "--steps", "1", "--warmup", "0"]),
    ("inference_throughput.py", ["--shapes", "tiny", "--bases", "2000", "--variants", "4", "--memory-mbp", "0.05"]),
])
def test_benchmark_script_prints_its_table(script, args):
    result = subprocess.run([sys.executable, os.path.join("benchmarks", script), *args], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "|---|" in result.stdout


def load_script(name, monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(REPO_ROOT, "benchmarks"))  # for its `import _harness`
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), os.path.join(REPO_ROOT, "benchmarks", name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_benchmark_fails_loudly_when_a_backend_disagrees(monkeypatch):
    gpu = load_script("gpu.py", monkeypatch)
    rows = [("sdpa", 4e-3, 8e-3, ""), ("eager", 5e-3, 9e-3, ""), ("flex_attention", 3e-2, None, "forward only"),
            ("flash_attention_2", float("nan"), 1e-2, "")]
    failures = gpu.check_agreement(rows, "bf16")
    assert failures == ["flex_attention: output relative error 3.00e-02 > 1.20e-02",
                        "flash_attention_2: output relative error nan > 1.20e-02"]
    assert gpu.check_agreement(rows[:2], "bf16") == []
    with pytest.raises(SystemExit, match="bf16 is for CUDA"):
        gpu.main(["--device", "cpu", "--dtype", "bf16"])
