"""Quiet means quiet; progress means progress (nucel/console.py).

Each command runs as a user runs it, in its own process with stderr a file: `--quiet` leaves only the command's own
lines (no bar, no per-step line, no library message); `--progress-bar on` draws one bar with a rate in the unit of
the work; a fresh task head on a pretrained encoder is one `note:` line, never transformers' loading report.
"""

import os
import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, motif_task, score_argv, write_config, write_fasta

from nucel import console
from nucel.inference import embed

# What must never reach a --quiet user, and what a bar must not bring along: carriage returns and block characters
# of a bar, tqdm's rate, transformers' weight bars and loading report, the Trainer's printed dicts, accelerate's
# tied-weight warning.
CHATTER = re.compile(r"\r|█|\d+%\||it/s|Loading weights|Writing model shards|LOAD REPORT|MISSING|UNEXPECTED|"
                     r"\{'loss'|\{'eval_|\[transformers\]|Removed shared tensor")
LIBRARY = re.compile(r"Loading weights|Writing model shards|LOAD REPORT|MISSING|\{'loss'|\{'eval_|\[transformers\]|"
                     r"Removed shared tensor")
FINETUNE = os.path.join(REPO_ROOT, "training", "finetune.py")
PRETRAIN = os.path.join(REPO_ROOT, "training", "pretrain.py")
BENCHMARK = os.path.join(REPO_ROOT, "training", "benchmark.py")


def command(*argv):
    """One command in a fresh process, offline, with the environment of a shell (not of a --quiet parent)."""
    environment = {key: value for key, value in os.environ.items() if key not in console.QUIET_ENVIRONMENT}
    environment.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    done = subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True, cwd=REPO_ROOT,
                          env=environment, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


def assert_only(lines_, *patterns):
    """Every line matches one of `patterns` (regular expressions, from the line's start)."""
    strays = [line for line in lines_ if not any(re.match(pattern, line) for pattern in patterns)]
    assert strays == [], strays


def assert_quiet(done, *stdout_patterns):
    assert not CHATTER.search(done.stdout + done.stderr), (done.stdout + done.stderr)[-3000:]
    assert_only(lines(done.stderr), "warning: ")
    assert_only(lines(done.stdout), *stdout_patterns)


def assert_one_bar(done, unit):
    """A tqdm bar with a rate in `unit` on stderr (n/s, or s/n when slower than one per second), and none of the
    libraries' output."""
    assert re.search(rf"\d+%\|.*({unit}/s|s/{unit})", done.stderr), done.stderr[-3000:]
    assert not LIBRARY.search(done.stdout + done.stderr), (done.stdout + done.stderr)[-3000:]
    assert "\r" not in done.stdout and "█" not in done.stdout


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return motif_task(tmp_path_factory.mktemp("quiet-task") / "task", sizes=(64, 32, 32))


FINETUNE_LINES = (r"task: multi-class", r"learning rate ", r"seed \d+: dev mcc", r"task / ")


# --------------------------------------------------------------------------------------------------- finetune
@pytest.mark.slow  # a subprocess that loads a model: seconds each
def test_quiet_finetune_prints_its_own_lines_only(tmp_path, tiny_export, task):
    done = command(FINETUNE, "--model", tiny_export / "discriminator", "--task-dir", task, "--output-dir",
                   tmp_path / "ft", "--max-steps", "4", "--eval-steps", "2", "--batch-size", "16", "--quiet")
    assert_quiet(done, *FINETUNE_LINES)


@pytest.mark.slow
def test_finetune_bar_in_steps_and_the_fresh_head_in_one_note(tmp_path, tiny_export, task):
    """Two seeds, two loads of the discriminator under a new classifier: one note line, once; a bar per seed in
    step/s with the loss and dev metric in its postfix; stdout keeps the command's own lines."""
    done = command(FINETUNE, "--model", tiny_export / "discriminator", "--task-dir", task, "--output-dir",
                   tmp_path / "ft", "--max-steps", "4", "--eval-steps", "2", "--batch-size", "16", "--seeds", "1", "2",
                   "--progress-bar", "on")
    assert_one_bar(done, "step")
    assert "seed 2:" in done.stderr and "dev mcc=" in done.stderr
    notes = [line for line in lines(done.stderr.replace("\r", "\n")) if "initialised fresh" in line]
    assert len(notes) == 1 and notes[0].startswith("note: ") and "classifier.weight" in notes[0], notes
    assert_only(lines(done.stdout), *FINETUNE_LINES)


@pytest.mark.slow  # a subprocess that loads a model: seconds each
def test_finetune_without_a_bar_logs_a_line_per_evaluation(tmp_path, task):
    """stderr a file and --progress-bar auto (the default): no bar, one line per evaluation instead."""
    done = command(FINETUNE, "--model", "onehot-cnn", "--task-dir", task, "--output-dir", tmp_path / "ft",
                   "--max-steps", "4", "--eval-steps", "2", "--batch-size", "16")
    assert "█" not in done.stderr and "\r" not in done.stderr
    assert re.search(r"^seed 42, step 2/4: loss [\d.]+, dev mcc", done.stdout, re.M), done.stdout
    assert_only(lines(done.stdout), *FINETUNE_LINES, r"seed 42, step \d/4: ")


# --------------------------------------------------------------------------------------------------- pretrain
PRETRAIN_LINES = (r"genome store ", r"electra \| masking", r"validation at step", r"exported (discriminator|generator)")


@pytest.mark.slow  # a subprocess that loads a model: seconds each
@pytest.mark.parametrize("mode", ["--quiet", "--progress-bar on", "--progress-bar off"])
def test_pretrain_output(tmp_path, mode):
    fasta = write_fasta(tmp_path / "g.fa.gz", [("chrA", "ACGTTGCAAGGCTTAC" * 1200)])
    config = write_config(tmp_path, max_steps=4, eval_steps=2, save_steps=2, logging_steps=1)  # progress_bar: false
    done = command(PRETRAIN, "--config", config, "--fasta", fasta, "--output-dir", tmp_path / "run", *mode.split())
    if mode == "--quiet":
        assert_quiet(done, *PRETRAIN_LINES)
        return
    notes = [line for line in lines(done.stderr.replace("\r", "\n")) if line.startswith("note: ")]
    assert notes == ["note: checkpoints store generator.decoder.weight once: the decoder is tied to the token "
                     "embeddings (tied again on resume)"]  # two checkpoints, one note
    if mode == "--progress-bar on":  # the command line's `on` wins over the YAML's progress_bar: false
        assert_one_bar(done, "step")
        assert "loss=" in done.stderr and "auc=" in done.stderr  # the latest numbers in the postfix
        assert_only(lines(done.stdout), *PRETRAIN_LINES)
    else:
        assert "█" not in done.stderr
        assert re.search(r"^step 1/4: loss [\d.]+, tok/s", done.stdout, re.M), done.stdout
        assert_only(lines(done.stdout), *PRETRAIN_LINES, r"step \d/4: loss", r"step \d: generator_loss")


# --------------------------------------------------------------------------------------- benchmark, prepare-genome
@pytest.mark.slow  # a subprocess that loads a model: seconds each
def test_benchmark_one_bar_over_cells_and_output_options_never_block_reuse(tmp_path, task):
    argv = [BENCHMARK, "--tasks", task, "--models", "onehot-cnn", "--output-dir", tmp_path / "grid", "--max-steps",
            "2", "--eval-steps", "2", "--batch-size", "16", "--seeds", "1"]
    done = command(*argv, "--progress-bar", "on")
    assert_one_bar(done, "cell")
    assert "seed 1 " in done.stderr  # the cell's training, in the bar's postfix
    again = command(*argv, "--quiet")
    assert "reusing" in again.stdout
    assert_quiet(again, r"reusing ", r"Test MCC", r"\|", r"†: ")


@pytest.mark.slow  # a subprocess that loads a model: seconds each
def test_prepare_genome_bar_in_bp(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa.gz", [("chrA", "ACGT" * 5000), ("chrB", "GGCA" * 3000)])
    done = command("-m", "nucel.tokenization.prepare_genome", fasta, "--output-dir", tmp_path / "store",
                   "--progress-bar", "on")
    assert_one_bar(done, "bp")
    quiet = command("-m", "nucel.tokenization.prepare_genome", fasta, "--output-dir", tmp_path / "store2", "--quiet")
    assert_quiet(quiet, r"genome store ")


# --------------------------------------------------------------------------------------------- inference, publish
# embed: bp/s; score-variants: variant/s; interpret: seq/s. --quiet: their result lines only.
@pytest.mark.slow  # a subprocess that loads a model: seconds each
def test_embed_bar_in_bp(tmp_path, tiny_export):
    argv = ["-m", "nucel.inference.embed", "--model", tiny_export, "--sequence", "ACGTACGTTG" * 20, "--output",
            tmp_path / "e.npy"]
    assert_one_bar(command(*argv, "--progress-bar", "on"), "bp")
    assert_quiet(command(*argv, "--quiet"), r"embedded 1 record")


@pytest.mark.slow  # a subprocess that loads a model: seconds each
def test_score_variants_bar_in_variants(tiny_export, inputs):
    argv = ["-m", "nucel.inference.variants", *score_argv(tiny_export, inputs)]  # --quiet
    assert_quiet(command(*argv), r"scored 2 of 2", r"status: ok 2")
    assert_one_bar(command(*[item if item != "--quiet" else "--progress-bar=on" for item in argv]), "variant")


@pytest.mark.slow  # a subprocess that loads a model: seconds each
def test_interpret_bar_in_sequences(tmp_path, tiny_export):
    argv = ["-m", "nucel.inference.interpret", "--model", tiny_export / "generator", "--sequence",
            "ACGTACGTTTATAAAGGCATTAGC", "--no-report"]
    assert_one_bar(command(*argv, "--output-dir", tmp_path / "i", "--progress-bar", "on"), "seq")
    assert_quiet(command(*argv, "--output-dir", tmp_path / "j", "--quiet"), r"seq1: 24 bp", r"wrote ")


@pytest.mark.slow  # a subprocess that loads a model: seconds each
def test_quiet_publish(tmp_path, tiny_export):
    done = command("-m", "nucel.hub_cards.publish", "--model", tiny_export / "discriminator", "--output-dir",
                   tmp_path / "hub", "--repo-id", "nucel/tiny", "--quiet")
    assert_quiet(done, r"assembled ", r"fresh-process check: ")


# ------------------------------------------------------------------------------------------------ the options
def test_quiet_with_a_bar_is_refused_in_one_line(tiny_export, tmp_path):
    from conftest import one_line_exit

    message = one_line_exit(embed.cli, ["--model", str(tiny_export), "--sequence", "ACGT", "--output",
                                        str(tmp_path / "e.npy"), "--quiet", "--progress-bar", "on"])
    assert message == "error: --quiet and --progress-bar on contradict each other (--quiet shows no progress bar)"


def test_output_options_are_passed_on_and_never_part_of_a_command_compared():
    assert console.without_output_options(["--model", "m", "--quiet", "--progress-bar", "on", "--progress-bar=off",
                                           "--seeds", "1"]) == ["--model", "m", "--seeds", "1"]
    console.apply_output_options(quiet=True)
    assert console.output_flags() == ["--quiet"] and os.environ["TRANSFORMERS_VERBOSITY"] == "error"
    console.apply_output_options(progress_bar="off")
    assert console.output_flags() == ["--progress-bar", "off"] and "TRANSFORMERS_VERBOSITY" not in os.environ


def test_work_run_inside_a_command_shows_in_its_bar(capsys):
    """A benchmark cell's training inside the benchmark's bar: the one bar's postfix, not a second bar."""
    console.apply_output_options(progress_bar="on")
    with console.progress(2, unit="cell", desc="benchmark") as bar:
        print("a line of the cell")
        with console.progress(3, unit="step", desc="seed 7") as inner:
            inner.update(3)
            inner.set_postfix({"loss": "0.5"})
            assert "seed 7 3/3 step, loss 0.5" in str(bar)
        bar.update(2)
    captured = capsys.readouterr()
    assert captured.out == "a line of the cell\n"
    assert captured.err.count("benchmark:") >= 2 and "seed 7:" not in captured.err


def test_only_the_main_rank_draws_a_bar_or_prints_a_note(monkeypatch, capsys):
    """Under accelerate launch or torchrun every rank runs the command: rank 0 alone shows progress and notes."""
    console.apply_output_options(progress_bar="on")
    monkeypatch.setenv("RANK", "1")
    with console.progress(3, unit="step") as bar:
        bar.update(3)
        assert bar.disable and not console.progress_lines(bar)
    console.note("a note rank 0 prints")
    monkeypatch.setenv("RANK", "0")
    with console.progress(3, unit="step") as bar:
        assert not bar.disable
    console.note("a note rank 0 prints")
    assert capsys.readouterr().err.count("note: a note rank 0 prints") == 1
