import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT, SHARED_DATA, write_fasta

from nucel.tokenization import alphabet, encode_sequence, read_fasta
from nucel.tokenization.genome_store import GenomeStore
from nucel.tokenization.prepare_genome import prepare_genome

GENOMES = os.path.join(SHARED_DATA, "genomes")


def test_store_holds_exactly_the_encoded_records(tmp_path):
    records = [("r1", "ACGTNacgtRY" * 100), ("r2", "GGGCCCAAATTT")]
    fasta = write_fasta(tmp_path / "g.fa.gz", records)
    index = prepare_genome([fasta], tmp_path / "store", log=lambda *_: None)
    store = GenomeStore(tmp_path / "store")
    assert store.total_length == sum(len(s) for _, s in records) == index["total_length"]
    for record_id, (name, sequence) in enumerate(records):
        assert store.records[record_id]["name"] == name
        assert np.array_equal(store.record_tokens(record_id), encode_sequence(sequence))
        assert store.records[record_id]["n_count"] == int((encode_sequence(sequence) == alphabet.N_ID).sum())


def test_rerun_is_a_noop_and_changed_input_rebuilds(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa.gz", [("r1", "ACGT" * 50)])
    messages = []
    prepare_genome([fasta], tmp_path / "store", log=messages.append)
    tokens = tmp_path / "store" / "tokens.u8"
    first_mtime = tokens.stat().st_mtime_ns
    prepare_genome([fasta], tmp_path / "store", log=messages.append)
    assert "up to date" in messages[-1] and tokens.stat().st_mtime_ns == first_mtime
    write_fasta(tmp_path / "g.fa.gz", [("r1", "TTTT" * 60)])  # same path, new content
    prepare_genome([fasta], tmp_path / "store", log=messages.append)
    assert "up to date" not in messages[-1]
    assert GenomeStore(tmp_path / "store").total_length == 240


def test_empty_records_and_duplicates(tmp_path):
    fasta = tmp_path / "e.fa"
    fasta.write_text(">a\n>b\nACGT\n")
    messages = []
    index = prepare_genome([str(fasta)], tmp_path / "store", log=messages.append)
    assert [r["length"] for r in index["records"]] == [0, 4]
    assert any("record 'a' is empty" in m for m in messages) and index["empty_records"]
    fasta.write_text(">a\nAC\n>a\nGT\n")
    with pytest.raises(ValueError, match=r"e\.fa:3: duplicate record name 'a'"):
        prepare_genome([str(fasta)], tmp_path / "store2", log=lambda *_: None)


def test_interrupted_store_is_rejected(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa.gz", [("r1", "ACGT" * 50)])
    prepare_genome([fasta], tmp_path / "store", log=lambda *_: None)
    with open(tmp_path / "store" / "tokens.u8", "r+b") as handle:
        handle.truncate(10)
    with pytest.raises(ValueError, match="tokens.u8: missing or not 200 bytes"):
        GenomeStore(tmp_path / "store")


@pytest.mark.slow
def test_command_line_on_real_slices(tmp_path):
    """Soft-masked human (bgzip) + the plant slice with IUPAC codes, through the module's command line."""
    human = os.path.join(GENOMES, "hg38_chr2_1-2333275.fa.gz")
    plant = os.path.join(GENOMES, "athaliana_first1pct_per_chr.fa.gz")
    result = subprocess.run([sys.executable, "-m", "nucel.tokenization.prepare_genome", human, plant, "--output",
                             str(tmp_path / "store")], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    store = GenomeStore(tmp_path / "store")
    assert store.records[0]["name"] == "chr2" and store.records[0]["length"] == 2_333_275
    assert store.total_length == 2_333_275 + 1_196_674
    for record_id, (name, sequence) in enumerate([*read_fasta(human), *read_fasta(plant)]):
        expected_n = sum(sequence.count(c) for c in "Nn" + alphabet.IUPAC_AMBIGUITY + alphabet.IUPAC_AMBIGUITY.lower())
        assert store.records[record_id]["n_count"] == expected_n, name
    assert (store.record_tokens(0)[:10_000] == alphabet.N_ID).all()
    assert not np.isin(store.tokens, [alphabet.UNK_ID, alphabet.PAD_ID]).any()
    bad = subprocess.run([sys.executable, "-m", "nucel.tokenization.prepare_genome", str(tmp_path / "missing.fa"),
                          "--output", str(tmp_path / "s2")], cwd=REPO_ROOT, capture_output=True, text=True)
    assert bad.returncode != 0 and bad.stderr.strip() == f"error: {tmp_path / 'missing.fa'}: FASTA file not found"


def test_console_script_is_installed():
    assert shutil.which("nucel-prepare-genome", path=os.path.dirname(sys.executable))
