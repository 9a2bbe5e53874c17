"""The one output rule (nucel/outputs.py): no output lands on an input, a multi-file output is committed whole
(a SIGKILL between its renames never leaves an old file beside a new one), a killed run's leftovers are removed
by the next run, and a full disk is one line with no temporary file left."""

import hashlib
import json
import os
import re
import resource
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT, motif_task, write_fasta

from nucel.outputs import check_distinct

HEADER = "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=3000>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

# Runs `module.function(argv)` and SIGKILLs the process right after the rename onto a file named sys.argv[1]:
# a kill between the renames of a multi-file commit.
KILL_AFTER_RENAME = r"""
import importlib, os, signal, sys
target, entry, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
real_replace = os.replace
def replace(source, destination, *args, **kwargs):
    real_replace(source, destination, *args, **kwargs)
    if os.path.basename(os.fspath(destination)) == target:
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
module, _, function = entry.partition(":")
getattr(importlib.import_module(module), function)(argv)
"""


def command(entry, *argv, kill_after=None, limit_file_size=None):
    """Run a command's entry point ("module:function") in a fresh process: (exit status, stdout, stderr)."""
    def limits():
        if limit_file_size:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead

    code = KILL_AFTER_RENAME if kill_after else (
        "import importlib, sys\nmodule, _, function = sys.argv[2].partition(':')\n"
        "getattr(importlib.import_module(module), function)(sys.argv[3:])\n")
    done = subprocess.run([sys.executable, "-c", code, kill_after or "-", entry, *map(str, argv)], cwd=REPO_ROOT,
                          env=ENV, capture_output=True, text=True, timeout=600, preexec_fn=limits)
    return done.returncode, done.stdout, done.stderr


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def leftovers(folder):
    return sorted(name for name in os.listdir(folder) if ".tmp-" in name)


def random_dna(length, seed):
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), length))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A reference FASTA, a BED on it and a VCF of SNVs on it."""
    folder = tmp_path_factory.mktemp("outputs")
    genome = random_dna(3000, 1)
    (folder / "ref.fa").write_text(">chr1\n" + "\n".join(genome[i:i + 60] for i in range(0, 3000, 60)) + "\n")
    (folder / "regions.bed").write_text("chr1\t100\t400\tr1\t0\t+\nchr1\t900\t1300\tr2\t0\t-\n")
    rows = [f"chr1\t{pos}\tv{pos}\t{genome[pos - 1]}\t{'A' if genome[pos - 1] != 'A' else 'C'}\t.\t.\t.\n"
            for pos in range(200, 2800, 300)]
    (folder / "calls.vcf").write_text(HEADER + "".join(rows))
    return folder


# ------------------------------------------------------------------------------------ outputs are not inputs
def test_an_output_is_never_an_input_or_another_output(tmp_path):
    source = tmp_path / "in.vcf"
    source.write_text("x")
    os.symlink(source, tmp_path / "link.tsv")
    os.link(source, tmp_path / "hard.tsv")
    (tmp_path / "model").mkdir()
    for outputs, message in (
            ({"--output": source}, "--output .*in.vcf: is the --vcf input"),
            ({"--output": tmp_path / "link.tsv"}, "link.tsv: is the --vcf input"),
            ({"--output": tmp_path / "hard.tsv"}, "hard.tsv: is the --vcf input"),
            ({"--output": tmp_path / "model" / "model.safetensors"}, "is inside the --model input"),
            ({"--output": tmp_path / "a.tsv", "--vcf-out": tmp_path / "a.tsv"}, "--vcf-out .*: is also --output")):
        with pytest.raises(ValueError, match=message):
            check_distinct({k: str(v) for k, v in outputs.items()}, {"--vcf": str(source),
                                                                        "--model": str(tmp_path / "model")})
    check_distinct({"--output": str(tmp_path / "new.tsv")}, {"--vcf": str(source), "--model": str(tmp_path / "model")})


@pytest.mark.slow  # seven fresh processes
def test_each_command_refuses_to_write_over_its_inputs(tmp_path, tiny_export, inputs):
    weights = tiny_export / "discriminator" / "model.safetensors"
    guarded = [weights, inputs / "ref.fa", inputs / "calls.vcf", inputs / "regions.bed"]
    before = {path: digest(path) for path in guarded}
    task = motif_task(tmp_path / "task", sizes=(24, 8, 8))
    cases = [
        (["nucel.inference.embed:cli", "--model", tiny_export, "--sequence", "ACGT", "--output", weights, "--format",
          "parquet"], "is inside the --model input"),
        (["nucel.inference.embed:cli", "--model", tiny_export, "--bed", inputs / "regions.bed", "--reference",
          inputs / "ref.fa", "--output", inputs / "ref.fa", "--format", "parquet"], "is the --reference input"),
        (["nucel.inference.variants:cli", "--model", tiny_export, "--vcf", inputs / "calls.vcf", "--reference",
          inputs / "ref.fa", "--output", inputs / "calls.vcf"], "--output .*calls.vcf: is the --vcf input"),
        (["nucel.inference.variants:cli", "--model", tiny_export, "--vcf", inputs / "calls.vcf", "--reference",
          inputs / "ref.fa", "--output", tmp_path / "o.tsv", "--vcf-out", inputs / "ref.fa"],
         "--vcf-out .*ref.fa: is the --reference input"),
        (["nucel.inference.variants:cli", "--model", tiny_export, "--vcf", inputs / "calls.vcf", "--reference",
          inputs / "ref.fa", "--output", tmp_path / "o.tsv", "--vcf-out", tmp_path / "o.tsv"],
         "--vcf-out .*o.tsv: is also --output"),
        (["nucel.training.finetuning.run:cli", "--model", "onehot-cnn", "--task-dir", task, "--output-dir", task],
         "--output-dir .*task: is the --task-dir input"),
        (["nucel.hub_cards.publish:cli", "--model", tiny_export / "discriminator", "--output-dir",
          tiny_export / "discriminator" / "hub"], "is inside the --model input"),
        (["nucel.inference.interpret:cli", "--model", tiny_export, "--sequence", "ACGTACGTAC", "--output-dir",
          tiny_export / "interpret"], "is inside the --model input"),
    ]
    for argv, message in cases:
        status, _, stderr = command(*argv)
        last = stderr.strip().splitlines()[-1]
        assert status == 1 and last.startswith("error: "), stderr
        assert re.search(message, last), last
    assert {path: digest(path) for path in guarded} == before
    assert not (tiny_export / "discriminator" / "hub").exists() and not (tmp_path / "o.tsv").exists()
    assert not (tiny_export / "interpret").exists()


# --------------------------------------------------------------------------- multi-file outputs commit whole
@pytest.mark.slow
def test_embed_killed_between_its_renames_leaves_no_mismatched_pair(tmp_path, tiny_export):
    out = tmp_path / "reads.npy"
    status, _, stderr = command("nucel.inference.embed:cli", "--model", tiny_export, "--sequence", "ACGTACGT", "GGGCCC",
                                "TTTT", "--output", out, "--quiet")
    assert status == 0, stderr
    assert np.load(out).shape[0] == 3
    status, _, _ = command("nucel.inference.embed:cli", "--model", tiny_export, "--sequence", "ACGTAC", "--output", out,
                           "--quiet", kill_after="reads.npy")
    assert status == -signal.SIGKILL
    # The new rows are in; the old ids file (3 rows) is gone, not left beside them as a complete-looking pair.
    assert np.load(out).shape[0] == 1 and not (tmp_path / "reads.ids.tsv").exists()
    status, _, stderr = command("nucel.inference.embed:cli", "--model", tiny_export, "--sequence", "ACGTAC", "--output",
                                out, "--quiet")
    assert status == 0, stderr
    assert (tmp_path / "reads.ids.tsv").read_text().splitlines()[1:] == ["seq1\t6\t6"]
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_score_variants_killed_between_its_renames_leaves_no_mismatched_pair(tmp_path, tiny_export, inputs):
    argv = ["nucel.inference.variants:cli", "--model", tiny_export, "--vcf", inputs / "calls.vcf", "--reference",
            inputs / "ref.fa", "--output", tmp_path / "scores.tsv", "--vcf-out", tmp_path / "scores.vcf", "--quiet"]
    assert command(*argv)[0] == 0
    status, _, _ = command(*argv, kill_after="scores.tsv")
    assert status == -signal.SIGKILL
    assert (tmp_path / "scores.tsv").exists() and not (tmp_path / "scores.vcf").exists()
    assert command(*argv)[0] == 0
    assert (tmp_path / "scores.vcf").exists() and leftovers(tmp_path) == []


@pytest.mark.slow
def test_prepare_genome_killed_between_its_renames_is_rebuilt_not_trusted(tmp_path):
    from nucel.tokenization import encode_sequence
    from nucel.tokenization.genome_store import GenomeStore

    first, second = random_dna(5000, 2), random_dna(5000, 3)  # the same length: sizes alone cannot tell them apart
    fasta_a = write_fasta(tmp_path / "a.fa.gz", [("chrA", first)])
    fasta_b = write_fasta(tmp_path / "b.fa.gz", [("chrA", second)])
    store = tmp_path / "store"
    assert command("nucel.tokenization.prepare_genome:main", fasta_a, "--output", store)[0] == 0
    status, _, _ = command("nucel.tokenization.prepare_genome:main", fasta_b, "--output", store, kill_after="tokens.u8")
    assert status == -signal.SIGKILL
    assert not (store / "index.json").exists()  # B's bases are in, and no index claims them to be A's
    status, stdout, _ = command("nucel.tokenization.prepare_genome:main", fasta_a, "--output", store)
    assert status == 0 and "up to date" not in stdout
    assert np.array_equal(GenomeStore(str(store)).record_tokens(0), encode_sequence(first))


@pytest.mark.slow  # three fine-tuning runs
def test_finetune_killed_mid_commit_leaves_no_old_results_beside_a_new_model(tmp_path, tiny_export):
    from nucel.hub_cards import publish

    task = motif_task(tmp_path / "task", sizes=(32, 16, 16))
    argv = ["nucel.training.finetuning.run:cli", "--model", tiny_export / "discriminator", "--task-dir", task,
            "--output-dir", tmp_path / "ft", "--max-steps", "2", "--quiet"]
    assert command(*argv, "--seeds", "1")[0] == 0
    old_results = (tmp_path / "ft" / "results.json").read_text()
    status, _, _ = command(*argv, "--seeds", "2", kill_after="model")
    assert status == -signal.SIGKILL
    assert (tmp_path / "ft" / "model").is_dir() and not (tmp_path / "ft" / "results.json").exists()
    # Even if an old results.json is put back beside the new model/, publish sees it describes other weights.
    (tmp_path / "ft" / "results.json").write_text(old_results)
    with pytest.raises(ValueError, match="results.json: describes other weights than .*model.safetensors"):
        publish.main(["--model", str(tmp_path / "ft" / "model"), "--output-dir", str(tmp_path / "hub")])
    assert command(*argv, "--seeds", "2")[0] == 0
    results = json.loads((tmp_path / "ft" / "results.json").read_text())
    assert results["saved_model"]["seed"] == 2 and leftovers(tmp_path / "ft") == []
    assert results["saved_model"]["sha256"] == digest(tmp_path / "ft" / "model" / "model.safetensors")


# ------------------------------------------------------------------------------------------------ full disk
@pytest.mark.slow
def test_a_full_disk_under_embed_is_one_line_and_leaves_nothing(tmp_path, tiny_export):
    """The file-size limit stands in for a full disk: per-base rows of 20 kbp x 64 floats need 5 MB."""
    status, _, stderr = command("nucel.inference.embed:cli", "--model", tiny_export,
                                "--sequence", random_dna(20_000, 4), "--per-base", "--output", tmp_path / "big.npy",
                                "--quiet", limit_file_size=1 << 20)
    last = stderr.strip().splitlines()[-1]
    assert status == 1 and last.startswith("error: ") and "big.npy.tmp-" in last and "File too large" in last, stderr
    assert os.listdir(tmp_path) == []
