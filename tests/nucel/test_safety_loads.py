"""Hostile model folders and arguments, through the inference commands (issue 30, round 2): the ground's one load
rule (nucel.model_folder: a folder holds what the command asks for, finite weights, sizes its weights have) and its
one error path (nucel.commands: `error: ...`, exit status 1, no traceback) for what the libraries raise about input."""

import gzip
import json
import os
import shutil

import pytest
import torch
from conftest import REPO_ROOT, one_line_exit, score_argv
from safetensors.torch import load_file, save_file

from nucel.commands import one_line_errors
from nucel.inference import embed, interpret, variants
from nucel.inference.embed import Embedder
from nucel.inference.interpretation.mutagenesis import SaturationMutagenesis
from nucel.inference.variants import VariantScorer
from nucel.modeling_nucel import NucELModel


def copy_export(source, target, change_weights=None, change_config=None):
    """A copy of an export folder with its weights and/or config.json changed."""
    shutil.copytree(source, target)
    if change_weights:
        state = load_file(target / "model.safetensors")
        change_weights(state)
        save_file(state, target / "model.safetensors", metadata={"format": "pt"})
    if change_config:
        config = json.loads((target / "config.json").read_text())
        change_config(config)
        (target / "config.json").write_text(json.dumps(config))
    return target


# ------------------------------------------------------------------------------------ a folder holds the head asked for
def test_a_generator_without_the_masked_nucleotide_head_is_refused(tiny_export, inputs):
    bare = inputs / "bare"
    NucELModel.from_pretrained(tiny_export / "discriminator").save_pretrained(bare)
    for folder in (bare, tiny_export / "discriminator"):
        message = one_line_exit(variants.cli, score_argv(tiny_export / "discriminator", inputs, "--generator", folder))
        assert message == (f"error: --generator {folder}: its weights have no masked-nucleotide head (3 missing, e.g. "
                           "decoder.bias); generator_llr needs a model saved with one")
    assert not (inputs / "out.tsv").exists()


def test_a_generator_export_is_not_read_as_the_discriminator(tiny_export, inputs):
    generator = tiny_export / "generator"
    message = one_line_exit(variants.cli, score_argv(generator, inputs, "--generator", generator))
    assert message == (f"error: --model {generator}: a NucELForMaskedLM whose weights have no replaced-token head "
                       "(4 missing, e.g. discriminator_classifier.bias); expected a discriminator export "
                       "(NucELForReplacedTokenDetection, a pretraining run's discriminator/)")


def test_a_config_naming_another_head_than_the_one_saved_is_refused(tiny_export, inputs):
    folder = copy_export(tiny_export / "discriminator", inputs / "linear",
                         change_config=lambda config: config.update(replaced_token_head="linear"))
    message = one_line_exit(variants.cli, score_argv(folder, inputs))
    assert message == (f"error: --model {folder}: 2 weights of its checkpoint have no place in the "
                       "NucELForReplacedTokenDetection its config.json describes (e.g. "
                       "discriminator_head.dense.weight): the config does not describe these weights")


# ------------------------------------------------------------------------------------------------ finite weights
def test_a_nan_weight_is_refused_naming_the_tensor(tiny_export, inputs):
    def poison(state):
        state["model.layers.1.attn.Wqkv.weight"].view(-1)[5] = float("nan")

    folder = copy_export(tiny_export / "discriminator", inputs / "nan", change_weights=poison)
    expected = (f"error: {folder / 'model.safetensors'}: tensor model.layers.1.attn.Wqkv.weight holds NaN or "
                "infinite values; a model with such weights computes NaN or wrong numbers (re-export it from a "
                "checkpoint whose weights are finite)")
    assert one_line_exit(embed.cli, ["--model", str(folder), "--sequence", "ACGTACGT", "--output",
                                     str(inputs / "e.npy"), "--quiet"]) == expected
    assert one_line_exit(variants.cli, score_argv(folder, inputs)) == expected
    assert not (inputs / "e.npy").exists() and not (inputs / "out.tsv").exists()


def test_a_weight_beyond_float16_is_refused_in_float16(tiny_export, tmp_path):
    from nucel.model_folder import load_part

    folder = copy_export(tiny_export / "discriminator", tmp_path / "big",
                         change_weights=lambda state: state["model.final_norm.weight"].fill_(1e6))
    with pytest.raises(ValueError) as failure:
        load_part(str(folder), NucELModel, torch.device("cpu"), torch.float16)
    assert str(failure.value) == (f"--model {folder}: weight final_norm.weight overflows float16 (beyond +-65504); "
                                  "use --dtype bfloat16 or float32")
    load_part(str(folder), NucELModel, torch.device("cpu"), torch.float32)  # finite as saved: it loads


# ------------------------------------------------------------------------------------------------ runtime options
def test_an_unknown_device_is_one_line_listing_what_is_accepted(tiny_export, inputs):
    expected = "error: --device tpu: expected auto, cpu, cuda, cuda:N (N: a GPU index) or mps"
    for cli, argv in ((embed.cli, ["--model", str(tiny_export), "--sequence", "ACGT", "--output",
                                   str(inputs / "e.npy")]),
                      (variants.cli, score_argv(tiny_export, inputs)),
                      (interpret.cli, ["--model", str(tiny_export), "--sequence", "ACGTACGT", "--output-dir",
                                       str(inputs / "i")])):
        assert one_line_exit(cli, [*argv, "--device", "tpu", "--quiet"]) == expected


def test_the_python_api_says_value_error_for_bad_arguments(tiny_export):
    encoder = NucELModel.from_pretrained(tiny_export / "discriminator")
    cases = [
        (lambda: Embedder.from_pretrained(str(tiny_export), device="tpu"),
         "--device tpu: expected auto, cpu, cuda, cuda:N (N: a GPU index) or mps"),
        (lambda: Embedder.from_pretrained(str(tiny_export), dtype="float64"),
         "--dtype float64: expected auto, float32, bfloat16, float16"),
        (lambda: Embedder(encoder, window="8"), "--window '8': expected a whole number"),
        (lambda: Embedder(encoder, layer=1.0), "--layer 1.0: expected a whole number"),
        (lambda: Embedder(encoder, batch_size="8"), "--batch-size '8': expected a whole number, at least 1"),
        (lambda: Embedder(encoder, overlap="3"), "--overlap '3': expected a whole number"),
        (lambda: VariantScorer(backbone=encoder, batch_size="8"),
         "--batch-size '8': expected a whole number, at least 1"),
        (lambda: VariantScorer.from_pretrained(str(tiny_export), device="cuda:x"),
         "--device cuda:x: expected auto, cpu, cuda, cuda:N (N: a GPU index) or mps"),
        (lambda: SaturationMutagenesis.from_pretrained(str(tiny_export), head="bogus"),
         "--head 'bogus': expected auto, classifier, generator, discriminator or none"),
        (lambda: SaturationMutagenesis.from_pretrained(str(tiny_export), batch_size=True),
         "--batch-size True: expected a whole number, at least 1"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError) as failure:
            call()
        assert str(failure.value) == message


# ------------------------------------------------------------------------------------------------ weight files
def test_a_truncated_safetensors_file_is_one_line(tiny_export, tmp_path):
    folder = copy_export(tiny_export / "discriminator", tmp_path / "cut")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[:len(data) // 2])
    message = one_line_exit(embed.cli, ["--model", str(folder), "--sequence", "ACGT", "--output",
                                        str(tmp_path / "e.npy"), "--quiet"])
    assert message == (f"error: {folder / 'model.safetensors'}: truncated or corrupt safetensors file (Error while "
                       "deserializing header: incomplete metadata, file not fully covered)")


@pytest.mark.parametrize("field, value, message", [
    ("hidden_size", 10 ** 9, "hidden_size=1000000000, but the weights beside it have 64 "
                             "(embeddings.tok_embeddings.weight is [16, 64]): it does not describe these weights"),
    ("num_hidden_layers", 10 ** 6, "num_hidden_layers=1000000, but the weights beside it hold 4 layers: it does not "
                                   "describe these weights"),
    ("intermediate_size", 10 ** 9, "intermediate_size=1000000000, but the weights beside it have 96 "
                                   "(layers.0.mlp.Wo.weight is [64, 96]): it does not describe these weights"),
    ("vocab_size", 1.5, "vocab_size=1.5: expected a positive whole number"),
])
def test_absurd_config_sizes_are_refused_before_anything_is_built(tiny_export, tmp_path, field, value, message):
    folder = copy_export(tiny_export / "discriminator", tmp_path / "absurd",
                         change_config=lambda config: config.update({field: value}))
    assert one_line_exit(embed.cli, ["--model", str(folder), "--sequence", "ACGT", "--output", str(tmp_path / "e.npy"),
                                     "--quiet"]) == f"error: {folder / 'config.json'}: {message}"


# ------------------------------------------------------------------------------------------------ the error path
def test_library_errors_about_input_are_one_line_and_bugs_keep_their_traceback():
    from safetensors import SafetensorError

    def raising(error):
        def main(argv):
            raise error
        return one_line_errors(main)

    for error, line in ((SafetensorError("Error while deserializing header: HeaderTooLarge"),
                         "error: SafetensorError: Error while deserializing header: HeaderTooLarge"),
                        (OSError("truncated file"), "error: truncated file"),
                        (gzip.BadGzipFile("Not a gzipped file (b'AC')"), "error: Not a gzipped file (b'AC')"),
                        (EOFError("Compressed file ended"), "error: an input ends early (Compressed file ended)"),
                        (MemoryError(), "error: out of memory (MemoryError); a smaller batch or window needs less"),
                        (ValueError("first\n  second"), "error: first second")):
        assert one_line_exit(raising(error), []) == line
    for bug in (KeyError("x"), TypeError("unsupported operand"), RuntimeError("shape mismatch")):
        with pytest.raises(type(bug)):
            raising(bug)([])


RANK_ONE_FAILS = """
import os, sys, time
from nucel.commands import one_line_errors

def main(argv):
    if os.environ["RANK"] == "1":
        raise ValueError("--task-dir tasks/x: no train split (rank 1 read it first)")
    time.sleep(20)  # rank 0 waits, as in a collective, until the launcher stops it

one_line_errors(main)()
"""


@pytest.mark.slow
def test_a_torchrun_rank_failure_ends_with_that_ranks_line(tmp_path):
    """A rank other than 0 stays quiet on stderr (rank 0 prints errors once), so without its error file torchrun's
    closing summary would say only 'exitcode: 1' under a wall of launcher text."""
    import subprocess
    import sys

    script = tmp_path / "fails.py"
    script.write_text(RANK_ONE_FAILS)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    done = subprocess.run([torchrun, "--nproc_per_node", "2", str(script), REPO_ROOT], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode != 0
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip() and not set(line.strip()) <= {"="}]
    assert lines[-1] == "traceback : error: --task-dir tasks/x: no train split (rank 1 read it first)", lines[-8:]


def test_one_load_reads_each_config_once_and_the_next_load_reads_it_again(tiny_export, monkeypatch):
    """`load` reads a folder's config.json once however many checks ask for it, and keeps nothing afterwards: a
    folder rewritten between two loads is read afresh."""
    from nucel import model_folder

    reads = []
    real = model_folder.read_json_object
    monkeypatch.setattr(model_folder, "read_json_object",
                        lambda path, *args, **kwargs: reads.append(path) or real(path, *args, **kwargs))
    model_folder.load(str(tiny_export), ("generator", "detector"), device="cpu")
    assert sorted(reads) == sorted({*reads}) and len(reads) == 2  # discriminator/ and generator/, once each
    model_folder.load(str(tiny_export), ("encoder",), device="cpu")
    assert len(reads) == 3


def test_the_model_is_read_before_the_device(tmp_path):
    """A missing --model is the error line, whatever --device says (as every command did before one loader)."""
    from nucel.model_folder import load

    with pytest.raises(ValueError, match=r"^--model .*missing: not a folder or a Hub id"):
        load(str(tmp_path / "missing"), device="tpu")
