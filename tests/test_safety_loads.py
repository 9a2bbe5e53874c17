"""Hostile inputs to the inference commands (issue 30, round 2): one load rule (a folder holds what the command
asks for, finite weights, sizes its weights have; motifs that are probabilities; an index that describes its
FASTA) and one error path (`error: ...`, exit status 1, no traceback) for what the libraries raise about input."""

import gzip
import json
import os
import shutil
import tempfile

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from conftest import REPO_ROOT
from nucel.hub_cards import convert
from nucel.inference import embed, interpret, variants
from nucel.inference.embed import Embedder
from nucel.inference.interpretation.motif_files import read_motifs
from nucel.inference.interpretation.mutagenesis import SaturationMutagenesis
from nucel.inference.variants import VariantScorer
from nucel.modeling_nucel import NucELModel
from nucel.tokenization.alphabet import VOCABULARY
from nucel.tokenization.reference import ReferenceGenome, index_agrees
from nucel.commands import one_line_errors
from nucel.training.studies import run as study

SEQUENCE = "ACGTACGTACGGATTACAGGCATTAGCATCGATCGATTTACGGA" * 3
VCF = ("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
       "chr1\t5\ta\tA\tT\t.\t.\t.\nchr1\t9\tb\tA\tG\t.\t.\t.\n")


def one_line_exit(cli, argv):
    """The `error: ...` line a command exits with (status 1: sys.exit with a message)."""
    with pytest.raises(SystemExit) as exited:
        cli(argv)
    message = exited.value.code
    assert isinstance(message, str) and message.startswith("error: ") and "\n" not in message, message
    return message


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


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "ref.fa").write_text(f">chr1\n{SEQUENCE}\n")
    (tmp_path / "in.vcf").write_text(VCF)
    return tmp_path


def score_argv(model, inputs, *extra):
    return ["--model", str(model), "--vcf", str(inputs / "in.vcf"), "--reference", str(inputs / "ref.fa"),
            "--output", str(inputs / "out.tsv"), "--quiet", *map(str, extra)]


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


# ------------------------------------------------------------------------------------------------ motif files
@pytest.mark.parametrize("name, text, message", [
    ("nan.meme", "MEME version 4\n\nALPHABET= ACGT\n\nMOTIF M1 one\nletter-probability matrix: alength= 4 w= 2\n"
                 "0.25 0.25 0.25 0.25\nnan 0.5 0.25 0.25\n",
     ":8: motif M1 has a value that is not a finite number at position 2 (nan 0.5 0.25 0.25); expected letter "
     "probabilities: finite, non-negative numbers summing to 1"),
    ("negative.meme", "MEME version 4\n\nMOTIF M2\nletter-probability matrix: alength= 4 w= 1\n-0.5 0.5 0.5 0.5\n",
     ":5: motif M2 has a negative entry at position 1 (-0.5 0.5 0.5 0.5); expected letter probabilities: finite, "
     "non-negative numbers summing to 1"),
    ("sum.meme", "MEME version 4\n\nMOTIF M3\nletter-probability matrix: alength= 4 w= 1\n0.5 0.5 0.5 0.5\n",
     ":5: motif M3 has a row that does not sum to 1 at position 1 (0.5 0.5 0.5 0.5); expected letter "
     "probabilities: finite, non-negative numbers summing to 1"),
    ("inf.transfac", "AC X1\nXX\nID one\nXX\nP0 A C G T\n01 1 2 3 4\n02 inf 1 1 1\nXX\n//\n",
     ":7: motif X1 has a value that is not a finite number at position 2 (inf 1 1 1); expected counts: finite, "
     "non-negative numbers"),
    ("nan.transfac", "AC X2\nXX\nP0 A C G T\n01 nan 1 1 1\n//\n",
     ":4: motif X2 has a value that is not a finite number at position 1 (nan 1 1 1); expected counts: finite, "
     "non-negative numbers"),
    ("nsites.meme", "MEME version 4\n\nMOTIF M4\nletter-probability matrix: alength= 4 w= 1 nsites= nan\n"
                    "0.25 0.25 0.25 0.25\n",
     ":4: motif M4 has w= 1 nsites= nan; expected a width of at least 1 and a finite, non-negative number of sites"),
])
def test_motif_values_that_are_not_probabilities_are_refused(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError) as failure:
        read_motifs(str(path))
    assert str(failure.value) == f"{path}{message}"
    error = one_line_exit(interpret.cli, ["--scan", "--motifs", str(path), "--sequence", "ACGTACGTAC", "--output-dir",
                                          str(tmp_path / "out"), "--quiet"])
    assert error == f"error: {path}{message}" and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ FASTA index
def bases(reference, name, start, end):
    return "".join(VOCABULARY[i] for i in reference.fetch(name, start, end))


@pytest.mark.parametrize("stale", ["older", "newer_but_wrong"])
def test_a_stale_fai_beside_the_fasta_is_never_read(tmp_path, monkeypatch, stale):
    import pysam

    monkeypatch.setenv("NUCEL_CACHE", str(tmp_path / "cache"))
    fasta = tmp_path / "g.fa"
    fasta.write_text(">chr1\nAAAAAAAAAACCCCCCCCCC\n>chr2\nGGGGGGGGGG\n")
    pysam.faidx(str(fasta))
    old_index = (tmp_path / "g.fa.fai").read_bytes()
    fasta.write_text(">chr1\nTTTTTTTTTTTTTTT\n>chr2\nCCCCCGGGGGGGGGGAAAAA\n")
    os.utime(fasta, (1e9, 1e9 + (0 if stale == "newer_but_wrong" else 2e8)))
    (tmp_path / "g.fa.fai").write_bytes(old_index)
    os.utime(tmp_path / "g.fa.fai", (1e9 + 1e8, 1e9 + 1e8))  # older or newer than the FASTA, as the case says
    assert not index_agrees(str(fasta), str(tmp_path / "g.fa.fai"))
    with ReferenceGenome(str(fasta)) as reference:
        assert {name: reference.length(name) for name in reference.names} == {"chr1": 15, "chr2": 20}
        assert bases(reference, "chr2", 0, 10) == "CCCCCGGGGG"
    assert (tmp_path / "g.fa.fai").read_bytes() == old_index  # the user's file is left alone


def test_an_index_that_agrees_is_used_for_plain_and_bgzip(tmp_path):
    import pysam

    rng = np.random.default_rng(1)
    records = [(f"c{i}", "description " * (i % 3) * 40, "".join(rng.choice(list("ACGTN"), int(rng.integers(1, 900)))))
               for i in range(12)]

    def write(path, records):
        with open(path, "w", newline="") as handle:
            for name, description, sequence in records:
                handle.write(f">{name} {description}\r\n" + "".join(sequence[i:i + 60] + "\r\n"
                                                                     for i in range(0, len(sequence), 60)))
        pysam.faidx(str(path))
        return str(path)

    plain = write(tmp_path / "g.fa", records)
    pysam.tabix_compress(plain, plain + ".gz")
    pysam.faidx(plain + ".gz")
    assert index_agrees(plain, plain + ".fai")
    assert index_agrees(plain + ".gz", plain + ".gz.fai", plain + ".gz.gzi")
    name, description, sequence = records[5]
    other = write(tmp_path / "other.fa", records[:5] + [(name, description, sequence[:-1])] + records[6:])
    assert not index_agrees(plain, other + ".fai")  # one record a base shorter: every later offset moves
    assert not index_agrees(plain + ".gz", other + ".fai", plain + ".gz.gzi")


def test_an_index_that_cannot_be_built_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("NUCEL_CACHE", str(tmp_path / "not-a-folder" / "cache"))
    (tmp_path / "g.fa").write_text(">chr1\nACGT\n")
    with pytest.raises(ValueError) as failure:
        ReferenceGenome(str(tmp_path / "g.fa"))
    assert str(failure.value).startswith(f"{tmp_path / 'g.fa'}: its index (none beside it, or a stale one) must be "
                                         f"built, and the cache folder {tmp_path / 'not-a-folder' / 'cache'}/faidx/")
    assert str(failure.value).endswith("is not writable (Not a directory); set NUCEL_CACHE to a writable folder")


# ------------------------------------------------------------------------------------------------ VCF compression
def test_a_plain_gzip_vcf_is_read_and_leaves_nothing_behind(tiny_export, inputs, monkeypatch):
    scratch = inputs / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    variants.main(score_argv(tiny_export, inputs, "--device", "cpu"))
    plain = (inputs / "out.tsv").read_text()
    with gzip.open(inputs / "in.vcf.gz", "wt") as handle:
        handle.write(VCF)
    argv = score_argv(tiny_export, inputs, "--device", "cpu")
    argv[argv.index("--vcf") + 1] = str(inputs / "in.vcf.gz")
    variants.main(argv)
    assert (inputs / "out.tsv").read_text() == plain and plain.count("\tok\n") == 2
    assert os.listdir(scratch) == []
    (inputs / "in.vcf.gz").write_bytes(gzip.compress(VCF.encode())[:60])  # cut short
    assert one_line_exit(variants.cli, argv) == (f"error: --vcf {inputs / 'in.vcf.gz'}: a corrupt or truncated gzip "
                                                 "file (Compressed file ended before the end-of-stream marker was "
                                                 "reached)")
    assert os.listdir(scratch) == []


# ------------------------------------------------------------------------------------------------ runtime options
def test_an_unknown_device_is_one_line_listing_what_is_accepted(tiny_export, inputs):
    expected = "error: --device tpu: expected auto, cpu, cuda, cuda:N (N: a GPU index) or mps"
    for cli, argv in ((embed.cli, ["--model", str(tiny_export), "--sequence", "ACGT", "--output",
                                   str(inputs / "e.npy")]),
                      (variants.cli, score_argv(tiny_export, inputs)),
                      (interpret.cli, ["--model", str(tiny_export), "--sequence", "ACGTACGT", "--output-dir",
                                       str(inputs / "i")])):
        assert one_line_exit(cli, [*argv, "--device", "tpu", "--quiet"]) == expected


@pytest.mark.parametrize("option, value", [("--top-k", "0"), ("--segments", "-1"), ("--matches", "0"),
                                           ("--batch-size", "0")])
def test_interpret_counts_below_one_are_one_line(tiny_export, tmp_path, option, value):
    message = one_line_exit(interpret.cli, ["--model", str(tiny_export), "--sequence", "ACGTACGTAC", "--output-dir",
                                            str(tmp_path / "i"), "--quiet", option, value])
    assert message == f"error: {option} {value}: must be at least 1"


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


def test_convert_names_a_tensor_of_the_wrong_shape(tmp_path):
    import transformers

    from test_convert import stock_config, write_source

    torch.manual_seed(0)
    state = transformers.ModernBertModel(stock_config()).state_dict()
    state["layers.1.attn.Wqkv.weight"] = torch.zeros(100, 64)
    source = write_source(tmp_path / "source", state, "ModernBertModel")
    message = one_line_exit(convert.cli, [source, str(tmp_path / "out")])
    assert message == (f"error: {source}/model.safetensors: weight layers.1.attn.Wqkv.weight has shape [100, 64], but "
                       "the ModernBERT its config.json describes expects [192, 64]")
    state["layers.1.attn.Wqkv.weight"] = torch.zeros(192, 64)
    state["embeddings.tok_embeddings.weight"] = torch.zeros(27, 32)
    source = write_source(tmp_path / "narrow", state, "ModernBertModel")
    message = one_line_exit(convert.cli, [source, str(tmp_path / "out")])
    assert message == (f"error: {source}/config.json: hidden_size=64, but the weights beside it have 32 "
                       "(embeddings.tok_embeddings.weight is [27, 32]): it does not describe these weights")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ study YAML
@pytest.mark.parametrize("change, message", [
    ({"arms": None}, "arms=None: expected a value (required)"),
    ({"budget": {"tokens": float("inf")}}, "budget.tokens=inf: expected a positive number (finite)"),
    ({"budget": {"flops": float("nan")}}, "budget.flops=nan: expected a positive number (finite)"),
    ({"budget": {"seconds": -5}}, "budget.seconds=-5: expected a positive number (finite)"),
])
def test_a_study_without_arms_or_with_an_endless_budget_is_one_line(tmp_path, change, message):
    values = {"pretraining": os.path.join(REPO_ROOT, "training", "configs", "tiny.yaml"), "budget": {"tokens": 1000},
              "arms": {"electra": {}}, "tasks": [str(tmp_path / "task")], "output_dir": str(tmp_path / "study")}
    values.update(change)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({key: value for key, value in values.items() if value is not None}))
    assert one_line_exit(study.cli, ["--config", str(path)]) == f"error: {path}: {message}"
    assert not (tmp_path / "study").exists()


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
sys.path.insert(0, sys.argv[1])
from nucel.commands import one_line_errors

def main(argv):
    if os.environ["RANK"] == "1":
        raise ValueError("--task-dir tasks/x: no train split (rank 1 read it first)")
    time.sleep(20)  # rank 0 waits, as in a collective, until the launcher stops it

one_line_errors(main)()
"""


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
