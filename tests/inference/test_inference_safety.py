"""Hostile inputs to the inference commands (issue 30, round 2): motifs that are probabilities, a gzip VCF read
whole or refused in one line, and counts below one refused in one line."""

import gzip
import os
import tempfile

import pytest
from conftest import VCF, one_line_exit, score_argv

from nucel.inference import interpret, variants
from nucel.inference.interpretation.motif_files import read_motifs


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


@pytest.mark.parametrize("option, value", [("--top-k", "0"), ("--segments", "-1"), ("--matches", "0"),
                                           ("--batch-size", "0")])
def test_interpret_counts_below_one_are_one_line(tiny_export, tmp_path, option, value):
    message = one_line_exit(interpret.cli, ["--model", str(tiny_export), "--sequence", "ACGTACGTAC", "--output-dir",
                                            str(tmp_path / "i"), "--quiet", option, value])
    assert message == f"error: {option} {value}: must be at least 1"
