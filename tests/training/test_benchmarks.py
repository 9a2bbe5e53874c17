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
    ("gpu.py", ["--device", "cpu", "--seq-len", "128", "--steps", "1", "--warmup", "0", "--workers", "1",
                "--corpus", "training/configs/corpora/six-genomes.yaml"]),
    ("data_path.py", ["--corpus", "training/configs/corpora/six-genomes.yaml", "--gpu-config", "none", "--workers",
                      "0", "--maskings", "uniform", "--batches", "2", "--repeats", "1", "--warmup", "0", "--steps",
                      "1", "--model-warmup", "0"]),
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


def table_rows(text, header):
    """The cells of the markdown table whose header row starts with `header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| " + header))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    assert set(rows[1]) == {"---"}
    return rows[0], rows[2:]


def test_data_path_benchmark_reports_loader_and_model_rates(tmp_path, monkeypatch, capsys):
    from conftest import planted_motif_genome, write_fasta

    data_path = load_script("data_path.py", monkeypatch)
    fasta = write_fasta(tmp_path / "g.fa.gz", [("chrA", planted_motif_genome(30_000, seed=3))])
    tiny = os.path.join(REPO_ROOT, "training", "configs", "tiny.yaml")
    data_path.main(["--config", tiny, "--gpu-config", tiny, "--fasta", fasta, "--store", str(tmp_path / "store"),
                    "--workers", "0", "1", "--maskings", "uniform", "randommask", "--batches", "2", "--warmup", "1",
                    "--steps", "1", "--model-warmup", "0", "--gpu-config-steps", "1"])
    out = capsys.readouterr().out

    def number(cell):
        return float(cell.replace(",", ""))

    columns, rows = table_rows(out, "config | model |")
    assert columns == list(data_path.MODEL_COLUMNS)
    assert [row[2].split(",")[0] for row in rows] == ["this CPU (cpu", "this CPU (cpu", "1 H100"]
    assert [row[3] for row in rows] == ["16 x 258", "1 x 258", "16 x 258"]
    for row in rows:
        assert all(number(cell) > 0 for cell in row[4:])
    columns, rows = table_rows(out, "config | crop")
    assert columns == list(data_path.LOADER_COLUMNS)
    assert [tuple(row[3:5]) for row in rows] == [(masking, workers) for _ in range(2)
                                                 for masking in ("uniform", "randommask") for workers in "01"]
    for row in rows:
        assert row[:3] == ["tiny.yaml", "256", "16"]
        windows, bp, milliseconds, headroom = map(number, row[5:])
        assert min(windows, bp, milliseconds, headroom) > 0
        assert bp == pytest.approx(windows * 256, rel=0.01)
    # the GPU's figure is derived from documented numbers, each named, and says so
    assert ("989 TFLOP/s dense bf16 peak (training/pretraining/compute.py) x 40% MFU (benchmarks/gpu.py's goal)"
            in out)
    assert "derived, not measured" in out
    assert "headroom against its training step on this CPU, measured" in out
