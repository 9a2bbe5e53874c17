"""Run directories (nucel.run_directory), pinned through the commands that use them (issue 10): one run at a
time in a directory, a directory of one kind never taken for another, and one line for an output path in the way."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO_ROOT, copy_run, motif_task, run, write_config

from nucel.run_directory import LOCK, RunLock
from nucel.training.finetuning import run as finetune


def cli(script, *argv, cwd=None):
    """A script run as users run it (`training/<script>`, or `-m <module>`): (exit status, stderr lines)."""
    command = ["-m", script] if script.startswith("nucel.") else [os.path.join(REPO_ROOT, "training", script)]
    done = subprocess.run([sys.executable, *command, *map(str, argv)],
                          capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    return done.returncode, [line for line in done.stderr.splitlines() if line.strip()]


HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from nucel.run_directory import claim_output_directory
    lock = claim_output_directory(sys.argv[2], "pretrain")
    print("held", flush=True)
    time.sleep(120)
""")


@pytest.mark.slow
def test_a_second_run_on_a_locked_directory_is_refused(tmp_path, fasta):
    """Two real processes: while one holds the run directory, a pretraining run there is refused, writes nothing."""
    output_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, REPO_ROOT, str(output_dir)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match=rf"in use by another NucEL run \(pid {holder.pid} on "):
            run(tmp_path, fasta)
        assert sorted(os.listdir(output_dir)) == [".nucel-run.json", LOCK]  # no store, no metrics, no checkpoint
    finally:
        holder.kill()
        holder.wait()
    run(tmp_path, fasta)  # the kernel dropped the dead holder's lock: the run proceeds
    assert (output_dir / "discriminator" / "model.safetensors").exists()


def test_a_lock_file_left_by_a_dead_process_is_taken_over(tmp_path):
    (tmp_path / LOCK).write_text(json.dumps({"pid": 2 ** 22 + 7, "host": "elsewhere", "started": "then"}))
    with RunLock(str(tmp_path)).acquire() as lock:
        assert lock.holder()["pid"] == os.getpid()
    assert RunLock._stale_or_free({"pid": 2 ** 22 + 7, "host": os.uname().nodename})  # no flock: pid decides
    assert not RunLock._stale_or_free({"pid": os.getppid(), "host": os.uname().nodename})


def test_finetune_refuses_a_pretraining_run_and_deletes_nothing_it_did_not_create(tmp_path, finished_run):
    pretraining = copy_run(finished_run, tmp_path / "p")
    checkpoints = sorted(os.listdir(pretraining / "checkpoints"))
    task = motif_task(tmp_path / "task")
    with pytest.raises(ValueError, match="holds a pretraining run .* not a fine-tuning run"):
        finetune.main(["--model", "onehot-cnn", "--task-dir", task, "--output-dir", str(pretraining),
                       "--max-steps", "2", "--quiet"])
    assert sorted(os.listdir(pretraining / "checkpoints")) == checkpoints
    # A fine-tuning folder keeps what others put there: only its own scratch checkpoints are removed.
    output = tmp_path / "ft"
    (output / "checkpoints").mkdir(parents=True)
    (output / "checkpoints" / "notes.txt").write_text("mine")
    finetune.main(["--model", "onehot-cnn", "--task-dir", task, "--output-dir", str(output), "--max-steps", "2",
                   "--quiet"])
    assert (output / "checkpoints" / "notes.txt").read_text() == "mine"
    assert not [name for name in os.listdir(output) if name.startswith(".checkpoints-")]
    with pytest.raises(ValueError, match="holds a saved model"):
        finetune.main(["--model", "onehot-cnn", "--task-dir", task, "--output-dir", str(pretraining / "generator"),
                       "--max-steps", "2", "--quiet"])


@pytest.mark.slow
def test_output_paths_in_the_way_are_one_line(tmp_path, fasta, tiny_export):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    task = motif_task(tmp_path / "task")
    config = write_config(tmp_path)
    for script, argv in [
        ("pretrain.py", ["--config", config, "--fasta", fasta, "--output-dir", blocker]),
        ("pretrain.py", ["--config", config, "--fasta", fasta, "--output-dir", blocker / "sub"]),
        ("finetune.py", ["--model", "onehot-cnn", "--task-dir", task, "--output-dir", blocker]),
        ("nucel.hub_cards.publish", ["--model", tiny_export / "discriminator", "--output-dir", blocker]),
    ]:
        code, lines = cli(script, *argv)
        assert code == 1 and len(lines) == 1 and lines[0].startswith("error: --output-dir "), (script, lines)
        assert "not a directory" in lines[0] or "cannot be created" in lines[0]


KIND_IN_ONE_ROOM = textwrap.dedent("""
    import sys
    import nucel.inference.interpret  # one room only: no training or hub_cards module imported
    from nucel.run_directory import check_output_directory, kind_of
    assert not any(name.startswith(("nucel.training.finetuning", "nucel.hub_cards.card")) for name in sys.modules)
    for folder in sys.argv[1:]:
        try:
            check_output_directory(folder, "interpret")
            print(folder, kind_of(folder), "accepted")
        except ValueError as error:
            print(error)
""")


@pytest.mark.slow
def test_every_room_knows_every_kind_of_run_directory(tmp_path):
    """Each room declares its kinds (the `nucel.run_kinds` entry points), so a command of one room refuses, by
    name, folders another room wrote, even ones written before run markers existed."""
    pretraining = tmp_path / "old-pretraining"
    (pretraining / "checkpoints" / "step-00000004").mkdir(parents=True)
    (pretraining / "metrics.jsonl").write_text("")
    hub_folder = tmp_path / "old-hub-folder"
    hub_folder.mkdir()
    (hub_folder / "README.md").write_text("---\n---\n")
    (hub_folder / "config.json").write_text("{}")
    grid = tmp_path / "marked-grid"
    grid.mkdir()
    (grid / ".nucel-run.json").write_text(json.dumps({"kind": "benchmark"}))  # a marker from before descriptions
    done = subprocess.run([sys.executable, "-c", KIND_IN_ONE_ROOM, pretraining, hub_folder, grid],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "holds a pretraining run (metrics.jsonl), not an interpretation run" in lines[0]
    assert "holds a Hub folder (README.md + config.json), not an interpretation run" in lines[1]
    assert "holds a benchmark grid (.nucel-run.json), not an interpretation run" in lines[2]
