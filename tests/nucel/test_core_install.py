"""The core install (`pip install nucel`, no extra) is enough to load a model and to be told what else to install.

`make test-core` runs this file in .venv-core (torch + `pip install -e .` + pytest) with NUCEL_CORE_INSTALL=1;
elsewhere it is skipped, since a venv with the extras installed proves nothing about their absence. There:
- AutoModel and AutoTokenizer (trust_remote_code=True) load an exported NucEL folder, through its own remote code
  in a process that cannot import nucel, and through the classes `import nucel` registers;
- `nucel --help` lists every job, and the jobs that need no extra (prepare-genome, convert, publish) import;
- a job that needs an extra ends with status 1 and one line naming it, under `nucel <job>` and `nucel-<job>`.
"""

import os
import subprocess
import sys

import pytest
import torch
from conftest import run_fresh

from nucel import cli

pytestmark = pytest.mark.skipif(os.environ.get("NUCEL_CORE_INSTALL") != "1",
                                reason="the core-install check: `make test-core` runs it in .venv-core")
BIN = os.path.dirname(sys.executable)

LOADER = r"""
import transformers

folder = sys.argv[1]
model = transformers.AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
tokenizer = transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
output = model(**tokenizer(["ACGTNACGTA"], return_tensors="pt")).last_hidden_state
print(*output.shape)
"""


def test_this_venv_is_a_core_install():
    """Every extra lacks a module here (else the checks below would pass for the wrong reason)."""
    assert all(cli.missing_modules(extra) for extra in cli.EXTRAS), {e: cli.missing_modules(e) for e in cli.EXTRAS}


def test_auto_classes_load_an_exported_folder(tiny_export, tmp_path):
    folder = tiny_export / "discriminator"
    # 1 + 10 bases + 1: [CLS] ACGTNACGTA [SEP], 64 wide (conftest.TINY)
    assert run_fresh(sys.executable, LOADER, [folder], tmp_path).split() == ["1", "12", "64"]
    import transformers

    model = transformers.AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    with torch.no_grad():
        assert model(**tokenizer(["ACGTNACGTA"], return_tensors="pt")).last_hidden_state.shape == (1, 12, 64)


def test_nucel_help_lists_every_job():
    done = subprocess.run([os.path.join(BIN, "nucel"), "--help"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert all(f"  {name} " in done.stdout for name in cli.JOBS), done.stdout


@pytest.mark.parametrize("name", [name for name, job in cli.JOBS.items() if job.extra is None])
def test_the_jobs_without_an_extra_import(name, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main([name, "--help"])
    assert exited.value.code == 0 and f"usage: nucel {name}" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["nucel", "embed"], ["nucel-embed"]])
def test_a_job_without_its_extra_is_one_line(command, tmp_path):
    done = subprocess.run([os.path.join(BIN, command[0]), *command[1:], "--model", str(tmp_path), "--sequence",
                           "ACGT", "--output", str(tmp_path / "out.npy")], capture_output=True, text=True,
                          timeout=300)
    missing = ", ".join(cli.missing_modules("inference"))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"error: {' '.join(command)} needs the [inference] extra: pip install "
                                        f"'nucel[inference]' (missing: {missing})"], done.stderr
    assert not (tmp_path / "out.npy").exists()
