"""inference/embed.py (nucel-embed): tiling that counts every base once, equality with the model run whole,
strand symmetry, BED coordinates against the FASTA, empty and N-only records, npy/Parquet outputs, bounded memory."""

import gzip
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, write_fasta

from nucel.inference import embed
from nucel.inference.embed import Embedder
from nucel.inference.tiling import tile
from nucel.modeling_nucel import NucELModel
from nucel.tokenization import encode_sequence, read_fasta, reverse_complement
from nucel.tokenization.reference import ReferenceGenome


def random_dna(length, seed):
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), length))


@pytest.fixture(scope="module")
def encoder(tiny_export):
    return NucELModel.from_pretrained(tiny_export / "discriminator").eval()


def direct(encoder, sequence):
    """The model run once on `[CLS] sequence [SEP]`: per-base states, without any tiling code."""
    ids = torch.tensor([[2, *encode_sequence(sequence).tolist(), 3]])
    with torch.no_grad():
        return encoder(ids).last_hidden_state[0, 1:-1].numpy()


# ------------------------------------------------------------------------------------------------ tiling
@pytest.mark.parametrize("length", [1, 7, 40, 41, 97, 250, 1001])
@pytest.mark.parametrize("window, overlap", [(40, 0), (40, 10), (33, 30), (16, 5)])
def test_tiles_cover_every_base_once_and_mirror(length, window, overlap):
    tiles = tile(length, window, overlap)
    cover = np.zeros(length)
    for piece in tiles:
        assert 0 <= piece.start < piece.end <= length and piece.end - piece.start <= window
        cover[piece.start:piece.end] += piece.weights
    np.testing.assert_allclose(cover, 1.0)
    spans = [(p.start, p.end) for p in tiles]
    assert spans == [(length - end, length - start) for start, end in reversed(spans)]  # mirror-symmetric
    assert all(left[1] - right[0] >= overlap for left, right in zip(spans, spans[1:]))


def test_a_record_inside_one_window_equals_the_model_run_whole(encoder):
    sequence = random_dna(150, seed=1) + "NNNN" + random_dna(30, seed=2)
    embedder = Embedder(encoder, window=200)
    whole = direct(encoder, sequence)
    np.testing.assert_allclose(embedder.embed(sequence, per_base=True), whole, atol=1e-5)
    acgt = encode_sequence(sequence) != 9  # the pooled vector averages the A/C/G/T bases, not N
    np.testing.assert_allclose(embedder.embed(sequence), whole[acgt].mean(0), atol=1e-5)


def test_a_long_record_is_stitched_from_its_windows(encoder):
    sequence = random_dna(700, seed=3)
    embedder = Embedder(encoder, window=120, overlap=30, batch_size=3)
    per_base = embedder.embed(sequence, per_base=True)
    assert per_base.shape == (700, 64)
    tiles = tile(700, 120, 30)
    assert len(tiles) > 5
    for piece in tiles:  # where a window owns a base, the stitched row is that window's own output
        own = piece.weights == 1.0
        window_states = direct(encoder, sequence[piece.start:piece.end])
        np.testing.assert_allclose(per_base[piece.start:piece.end][own], window_states[own], atol=1e-5)
    np.testing.assert_allclose(embedder.embed(sequence), per_base.mean(0), atol=1e-5)


@pytest.mark.slow
def test_reverse_complement_average_is_strand_symmetric(encoder, tmp_path):
    records = [("short", random_dna(90, 4)), ("long", random_dna(1300, 5)), ("odd", random_dna(333, 6) + "N" * 9)]
    plus = write_fasta(tmp_path / "plus.fa.gz", records)
    minus = write_fasta(tmp_path / "minus.fa.gz", [(name, reverse_complement(seq)) for name, seq in records])
    embedder = Embedder(encoder, window=200, overlap=40, reverse_complement_average=True, batch_size=4)
    for per_base in (False, True):
        out = {}
        for name, path in (("plus", plus), ("minus", minus)):
            target = str(tmp_path / f"{name}-{per_base}.npy")
            embed.embed_to_file(embedder, embed.FastaRecords(path), target, per_base=per_base, quiet=True,
                                log=lambda line: None)
            out[name] = np.load(target)
        if per_base:  # base i of a record is base length-1-i of its reverse complement
            offsets = np.cumsum([0] + [len(seq) for _, seq in records])
            for (start, end) in zip(offsets, offsets[1:]):
                np.testing.assert_allclose(out["plus"][start:end], out["minus"][start:end][::-1], atol=1e-5)
        else:
            np.testing.assert_allclose(out["plus"], out["minus"], atol=1e-5)
    single = Embedder(encoder, window=200, overlap=40)  # one strand alone is not symmetric: the check can fail
    assert np.abs(single.embed(records[1][1]) - single.embed(reverse_complement(records[1][1]))).max() > 1e-3


def test_layer_zero_is_the_token_embeddings(encoder):
    sequence = random_dna(60, seed=7)
    states = Embedder(encoder, layer=0).embed(sequence, per_base=True)
    with torch.no_grad():
        expected = encoder.embeddings(input_ids=torch.tensor([encode_sequence(sequence).tolist()]))[0].numpy()
    np.testing.assert_allclose(states, expected, atol=1e-6)
    with pytest.raises(ValueError, match="--layer 9: this model has 4 layers"):
        Embedder(encoder, layer=9)


# ------------------------------------------------------------------------------------------------ BED + reference
@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    """chr1/chr2 as plain FASTA, bgzip FASTA (pysam) and a genome store: three references, one genome."""
    import pysam

    from nucel.tokenization.prepare_genome import prepare_genome

    folder = tmp_path_factory.mktemp("genome")
    records = [("chr1", random_dna(3000, 8)), ("chr2", random_dna(500, 9).lower())]
    plain = folder / "genome.fa"
    plain.write_text("".join(f">{name} test\n" + "\n".join(seq[i:i + 70] for i in range(0, len(seq), 70)) + "\n"
                             for name, seq in records))
    pysam.tabix_compress(str(plain), str(folder / "genome.fa.gz"))
    prepare_genome([str(plain)], str(folder / "store"), log=lambda line: None)
    return folder, dict(records)


@pytest.mark.parametrize("kind", ["genome.fa", "genome.fa.gz", "store"])
def test_reference_fetch_is_zero_based_half_open(genome, kind, monkeypatch, tmp_path):
    monkeypatch.setenv("NUCEL_CACHE", str(tmp_path / "cache"))  # the index goes to a cache, not beside the data
    folder, records = genome
    with ReferenceGenome(str(folder / kind)) as reference:
        assert reference.length("chr1") == 3000 and reference.length("chr2") == 500
        for name, start, end in (("chr1", 0, 1), ("chr1", 2999, 3000), ("chr2", 100, 170), ("chr1", 5, 5)):
            np.testing.assert_array_equal(reference.fetch(name, start, end), encode_sequence(records[name][start:end]))
        with pytest.raises(ValueError, match="no sequence named 'chr3'"):
            reference.length("chr3")
        with pytest.raises(ValueError, match="outside the sequence 'chr2'"):
            reference.fetch("chr2", 490, 501)
    if kind != "store":
        assert sorted(os.listdir(folder)) == ["genome.fa", "genome.fa.gz", "store"]  # nothing written beside


def test_bed_regions_match_the_fasta_text(encoder, genome, tmp_path):
    folder, records = genome
    bed = tmp_path / "regions.bed"
    bed.write_text("track name=test\nchr1\t0\t150\tfirst\nchr1\t2900\t3000\tlast\t0\t-\nchr2\t10\t260\n")
    embedder = Embedder(encoder, window=100, overlap=20)
    out = tmp_path / "bed.npy"
    embed.embed_to_file(embedder, embed.BedRegions(str(bed), str(folder / "genome.fa.gz")), str(out), per_base=True,
                        quiet=True, log=lambda line: None)
    text = {name: seq for name, seq in read_fasta(str(folder / "genome.fa"))}  # independent of pysam
    expected = [text["chr1"][0:150], reverse_complement(text["chr1"][2900:3000]), text["chr2"][10:260]]
    np.testing.assert_allclose(np.load(out), np.concatenate([embedder.embed(s, per_base=True) for s in expected]),
                               atol=1e-5)
    ids = (tmp_path / "bed.ids.tsv").read_text().splitlines()
    assert ids == ["id\tlength\tacgt_bases\tfirst_row\tchrom\tstart\tend\tstrand",
                   "first\t150\t150\t0\tchr1\t0\t150\t.", "last\t100\t100\t150\tchr1\t2900\t3000\t-",
                   "chr2:11-260\t250\t250\t250\tchr2\t10\t260\t."]


def test_bad_bed_lines_name_the_line(genome, tmp_path):
    folder, _ = genome
    for content, message in (("chr1\t10\n", "regions.bed:1: expected tab-separated chrom, start, end"),
                             ("chr1\t100\t50\n", "regions.bed:1: chr1:100-50 is not a region"),
                             ("chrX\t1\t5\n", "no sequence named 'chrX'"),
                             ("chr1\t0\t5\tx\nchr1\t5\t9\tx\n", "regions.bed:2: region name 'x' repeats line 1")):
        (tmp_path / "regions.bed").write_text(content)
        with pytest.raises(ValueError, match=message):
            embed.BedRegions(str(tmp_path / "regions.bed"), str(folder / "genome.fa"))


def test_plain_gzip_reference_says_what_to_do(tmp_path):
    path = write_fasta(tmp_path / "plain.fa.gz", [("chr1", "ACGT" * 10)])
    with pytest.raises(ValueError, match="not bgzip .BGZF.*nucel prepare-genome"):
        ReferenceGenome(path)


# ------------------------------------------------------------------------------------------------ records and files
def test_empty_and_n_only_records_are_named_and_skipped(encoder, tmp_path):
    path = tmp_path / "mixed.fa"
    path.write_text(">good\nACGTACGTAA\n>empty\n>only_n\nNNNNNNNN\n>also_good\nGGGCCCAT\n")
    lines = []
    summary = embed.embed_to_file(Embedder(encoder), embed.FastaRecords(str(path)), str(tmp_path / "e.npy"),
                                  quiet=True, log=lines.append)
    assert summary["skipped"] == ["empty", "only_n"]
    assert any("mixed.fa:3: record 'empty' is empty" in line for line in lines)
    assert any("mixed.fa:4: record 'only_n' holds no A/C/G/T base" in line for line in lines)
    vectors = np.load(tmp_path / "e.npy")
    assert vectors.shape == (2, 64) and np.isfinite(vectors).all()
    assert [line.split("\t")[0] for line in (tmp_path / "e.ids.tsv").read_text().splitlines()] == [
        "id", "good", "also_good"]
    with pytest.raises(ValueError, match="holds no A/C/G/T base"):
        Embedder(encoder).embed("NNNN")
    with pytest.raises(ValueError, match="is empty"):
        Embedder(encoder).embed(["ACGT", ""])


def test_parquet_holds_the_same_numbers(encoder, tmp_path):
    import pyarrow.parquet as pq

    records = [("a", random_dna(300, 10)), ("b", "ACGTN" + random_dna(50, 11))]
    fasta = write_fasta(tmp_path / "r.fa.gz", records)
    embedder = Embedder(encoder, window=128, overlap=16)
    for per_base in (False, True):
        npy, parquet = str(tmp_path / f"o{per_base}.npy"), str(tmp_path / f"o{per_base}.parquet")
        for target, fmt in ((npy, "npy"), (parquet, "parquet")):
            embed.embed_to_file(embedder, embed.FastaRecords(fasta), target, fmt, per_base, quiet=True,
                                log=lambda line: None)
        table = pq.read_table(parquet).to_pydict()
        np.testing.assert_allclose(np.array(table["embedding"], dtype=np.float32), np.load(npy))
        if per_base:
            assert table["id"][:2] == ["a", "a"] and table["position"][300:302] == [0, 1]
            assert "".join(table["base"][300:305]) == "ACGTN"
        else:
            assert table["id"] == ["a", "b"] and table["length"] == [300, 55] and table["acgt_bases"] == [300, 54]
    assert not [name for name in os.listdir(tmp_path) if ".tmp-" in name or ".rows-" in name]


@pytest.mark.slow
def test_per_base_output_streams_to_disk(encoder, tmp_path):
    """100 kbp x 64 floats is 25.6 MB of output; the Python heap stays far below it (rows go to a memmap)."""
    fasta = write_fasta(tmp_path / "long.fa.gz", [("long", random_dna(100_000, 12))])
    embedder = Embedder(encoder, window=254, overlap=32, batch_size=8)
    tracemalloc.start()
    embed.embed_to_file(embedder, embed.FastaRecords(fasta), str(tmp_path / "long.npy"), per_base=True, quiet=True,
                        log=lambda line: None)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert np.load(tmp_path / "long.npy", mmap_mode="r").shape == (100_000, 64)
    assert peak < 8e6, peak


@pytest.mark.slow
def test_command_line_runs_and_refuses_bad_input(tiny_export, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "nucel.inference.embed", "--model", str(tiny_export), *args],
                              capture_output=True, text=True, cwd=REPO_ROOT,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})

    done = run("--sequence", "ACGTACGTTG", random_dna(700, 13), "--output", str(tmp_path / "s.npy"), "--quiet",
               "--window", "200")
    assert done.returncode == 0, done.stderr
    assert np.load(tmp_path / "s.npy").shape == (2, 64)
    assert "embedded 2 record(s), 710 bp" in done.stdout
    for args, message in (
            (["--fasta", str(tmp_path / "missing.fa"), "--output", str(tmp_path / "x.npy")], "missing.fa: not found"),
            (["--sequence", "ACGT", "--output", str(tmp_path / "x.txt")], "expected a .npy file"),
            (["--sequence", "ACGT", "--output", str(tmp_path / "x.npy"), "--window", "600"],
             "--window 600: must be between 1 and 254")):
        done = run(*args)
        assert done.returncode == 1 and done.stderr.strip().splitlines()[-1].startswith("error: "), done.stderr
        assert message in done.stderr
    assert not (tmp_path / "x.npy").exists()


def test_gzip_fasta_input_reads_all_records(encoder, tmp_path):
    path = tmp_path / "reads.fa.gz"
    with gzip.open(path, "wt") as handle:
        for i in range(30):
            handle.write(f">read{i}\n{random_dna(20 + i, 100 + i)}\n")
    summary = embed.embed_to_file(Embedder(encoder, batch_size=7), embed.FastaRecords(str(path)),
                                  str(tmp_path / "reads.npy"), quiet=True, log=lambda line: None)
    assert summary["records"] == 30 and summary["bases"] == sum(20 + i for i in range(30))
    assert np.load(tmp_path / "reads.npy").shape == (30, 64)
