"""Hostile input to the tokenization layer: tokenizer code in a model folder never runs, special tokens agree
between the two encoders, a genome given twice is refused, and a FASTA index is used only where it describes
its FASTA."""

import json
import os
import shutil

import numpy as np
import pytest
from conftest import motif_task, run

from nucel.hub_cards import publish
from nucel.tokenization.alphabet import VOCABULARY
from nucel.tokenization.reference import ReferenceGenome, index_agrees
from nucel.training.finetuning import run as finetune


# ------------------------------------------------------------------------------------------- no code from model folders
def evil_tokenizer_folder(source, folder, marker):
    """A model folder whose tokenizer_config.json points at a .py file of the folder (which would run)."""
    shutil.copytree(source, folder)
    (folder / "evil_tokenizer.py").write_text(f"open({str(marker)!r}, 'w').close()\n"
                                              "from transformers import PreTrainedTokenizerFast as EvilTokenizer\n")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["auto_map"] = {"AutoTokenizer": [None, "evil_tokenizer.EvilTokenizer"]}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def test_tokenizer_code_in_a_model_folder_never_runs(tmp_path, tiny_export):
    marker = tmp_path / "pwned"
    folder = evil_tokenizer_folder(tiny_export / "discriminator", tmp_path / "evil", marker)
    task = motif_task(tmp_path / "task")
    with pytest.raises(ValueError, match="its tokenizer needs custom code .*evil_tokenizer.EvilTokenizer"):
        finetune.main(["--model", str(folder), "--task-dir", task, "--output-dir", str(tmp_path / "ft"),
                       "--max-steps", "2", "--quiet"])
    with pytest.raises(ValueError, match="its tokenizer needs custom code"):
        publish.main(["--model", str(folder), "--output-dir", str(tmp_path / "hub")])
    assert not marker.exists() and not (tmp_path / "hub").exists() and not (tmp_path / "ft").exists()


@pytest.mark.parametrize("text", ["AC[MASK]GT", "[CLS]ACGT[SEP]", "A[PAD]C", "a[pad]c", "AC[MA SK]G", "[RESERVED_0]A",
                                  "[[MASK]]", "ACGT[UNK]N[SEP"])
def test_special_tokens_in_text_agree_between_the_two_encoders(text):
    from nucel.tokenization import encode_sequence, load_tokenizer

    assert encode_sequence(text).tolist() == load_tokenizer("nucleotide")(text, add_special_tokens=False)["input_ids"]


def test_the_same_genome_twice_is_refused(tmp_path, fasta):
    copy = tmp_path / "copy.fa.gz"
    shutil.copyfile(fasta, copy)
    with pytest.raises(ValueError, match="is given twice"):
        run(tmp_path, [fasta, fasta])
    with pytest.raises(ValueError, match=f"has the same content as {fasta}"):
        run(tmp_path, [fasta, str(copy)])


# ---------------------------------------------------------------------------------------------------------- FASTA index
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
