"""Motif matches with a significance rule and a taxon filter, and genome coordinates for BED-driven outputs
(inference/interpretation/motif_match.py, motif_files.py, coordinates.py; inference/embed.py's ids and Parquet).

The oracles: a strong JASPAR CTCF site planted in random DNA is matched with E <= 0.05 and random DNA is "no
significant match" (the matcher fed an ISM-like importance vector, high over the planted bases, as nucel-interpret
feeds it); JASPAR's own `CC tax_group:` lines decide what --taxon keeps; and for a minus-strand BED region every
table's genome coordinates point back at the reference: the base at sequence position i is the complement of the
reference base at genome position end - 1 - i."""

import os

import numpy as np
import pytest
from conftest import SHARED_DATA, strong_site

from nucel.inference import embed, interpret
from nucel.inference.inputs import BedRegions
from nucel.inference.interpretation import motif_match, plots
from nucel.inference.interpretation.motif_files import read_motifs, select_taxon
from nucel.inference.interpretation.motif_match import MAX_EVALUE, NO_MATCH, important_segments, match_segments
from nucel.inference.interpretation.mutagenesis import Mutagenesis
from nucel.inference.interpretation.pwm import scan
from nucel.tokenization import encode_sequence

MEME = os.path.join(SHARED_DATA, "motifs", "JASPAR2020_CORE_vertebrates_non-redundant_pfms_meme.txt.gz")
TRANSFAC = os.path.join(SHARED_DATA, "motifs", "jaspar2024_core.transfac.gz")
COMPLEMENT = str.maketrans("ACGT", "TGCA")
NON_VERTEBRATE = {"plants", "fungi", "insects", "nematodes", "urochordates", "diatoms"}


@pytest.fixture(scope="module")
def transfac():
    return read_motifs(TRANSFAC)


@pytest.fixture(scope="module")
def vertebrates(transfac):
    return select_taxon(transfac, "vertebrates", TRANSFAC)


def random_dna(rng, length):
    return "".join(rng.choice(list("ACGT"), length))


def planted_ctcf(seed, flank=40):
    """Random DNA with a strong JASPAR 2020 CTCF site (MA0139.1, 19 bp) at `flank`; returns (text, site start)."""
    ctcf = {m.id: m for m in read_motifs(MEME)}["MA0139.1"]
    rng = np.random.default_rng(seed)
    return random_dna(rng, flank) + strong_site(ctcf, rng) + random_dna(rng, flank + 1), flank


# ------------------------------------------------------------------------------------------- taxa
def test_taxon_comes_from_jaspars_tax_group_lines(transfac, vertebrates):
    groups = {}
    for motif in transfac:
        groups[motif.taxon] = groups.get(motif.taxon, 0) + 1
    assert groups == {"vertebrates": 879, "plants": 805, "insects": 286, "fungi": 178, "nematodes": 103,
                      "urochordates": 94, "diatoms": 1}  # `zcat ... | grep -c 'CC tax_group:<group>'`
    assert transfac[0].taxon == "plants"  # MA0001.3 AGL3, the file's first block: CC tax_group:plants
    assert len(vertebrates) == 879 and {m.taxon for m in vertebrates} == {"vertebrates"}
    names = {m.name.upper() for m in vertebrates}
    assert "CTCF" in names and not names & {"AGL3", "RLM1", "GAL4", "MCM1"}  # no plant or yeast motif
    assert select_taxon(transfac, "all", TRANSFAC) == transfac and select_taxon(transfac, None, TRANSFAC) == transfac
    assert len(select_taxon(transfac, "Plants", TRANSFAC)) == 805


def test_meme_file_without_taxa_only_for_the_taxon_its_name_says():
    meme = read_motifs(MEME)
    assert all(motif.taxon is None for motif in meme)
    assert select_taxon(meme, "vertebrates", MEME) == meme  # JASPAR2020_CORE_vertebrates_..._meme.txt.gz
    with pytest.raises(ValueError, match="--taxon plants: .* carries no taxon information") as raised:
        select_taxon(meme, "plants", MEME)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("taxon", ["mammals", "vertebrate"])
def test_unknown_or_empty_taxon_is_one_error_line_before_anything_is_written(tmp_path, taxon):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exited:
        interpret.cli(["--scan", "--motifs", TRANSFAC, "--taxon", taxon, "--sequence", "ACGTACGTACGTACGT",
                       "--output-dir", str(out), "--quiet"])
    error = str(exited.value.code)
    assert error.startswith(f"error: --taxon {taxon}: no motif of ") and "\n" not in error, error
    assert "vertebrates (879)" in error and "plants (805)" in error  # the groups the file does have
    assert not out.exists()


# ------------------------------------------------------------------------------------------- significance
def test_planted_site_is_significant_and_random_dna_is_not(vertebrates):
    text, start = planted_ctcf(11)
    importance = np.zeros(len(text))
    importance[start + 4:start + 14] = 1.0  # ISM-like: the model relies on the middle of the site
    matches = match_segments("planted", encode_sequence(text), important_segments(importance, count=1),
                             vertebrates, top=3)
    best = matches[0]
    assert best.significant and (best.hit.motif_name, best.hit.motif_id, best.rank) == ("CTCF", "MA0139.2", 1)
    # JASPAR 2024's MA0139.2 is the 15-bp core of 2020's 19-bp MA0139.1 (the planted site): inside it, + strand.
    assert start <= best.hit.start and best.hit.end <= start + 19 and best.hit.strand == "+"
    assert best.e_value < MAX_EVALUE
    assert all(m.significant and m.e_value <= MAX_EVALUE for m in matches)
    rng = np.random.default_rng(12)
    for trial in range(3):
        text = random_dna(rng, 100)
        importance = np.zeros(100)
        importance[30 + 10 * trial:40 + 10 * trial] = 1.0
        (none,) = match_segments("random", encode_sequence(text), important_segments(importance, count=1),
                                 vertebrates, top=3)
        assert not none.significant and none.hit is None and none.rank is None
        assert none.e_value > MAX_EVALUE  # the best motif's E, kept in the table
        row = motif_match.match_row(none, "random")
        assert row[5:7] == ["", NO_MATCH] and float(row[14]) == pytest.approx(none.e_value, rel=1e-2)
        assert NO_MATCH in motif_match.describe_match(none)
    # --max-evalue 10 turns the same segment into a list of (non-significant) candidates, as Tomtom lists them.
    assert all(m.significant for m in match_segments("random", encode_sequence(text),
                                                     important_segments(importance, count=1), vertebrates, top=3,
                                                     max_evalue=1e9))


def test_scan_e_value_counts_every_test(vertebrates):
    text, start = planted_ctcf(13)
    hits = scan("s", encode_sequence(text), vertebrates, max_p=1e-4)
    tests = sum(2 * (len(text) - m.width + 1) for m in vertebrates if m.width <= len(text))
    for hit in hits:
        assert hit.e_value == pytest.approx(hit.p_value * tests)
    significant = [hit for hit in hits if hit.e_value <= MAX_EVALUE]
    assert any(h.motif_name == "CTCF" and start <= h.start and h.end <= start + 19 for h in significant)
    noise = scan("r", encode_sequence(random_dna(np.random.default_rng(14), 99)), vertebrates, max_p=1e-4)
    assert noise and not [hit for hit in noise if hit.e_value <= MAX_EVALUE]


class PlantedImportance:
    """Stands in for SaturationMutagenesis: every alternative base at the `planted` positions (name -> slice)
    lowers the score by 1, elsewhere by 0.01 (importance 1 and 0.01), as ISM of a model that learnt the site."""

    measure = "planted importance (test)"

    def __init__(self, model, kind, *args):
        self.kind = kind

    planted = {}

    def __call__(self, name, ids):
        effects = np.full((len(ids), 4), -0.01)
        effects[self.planted[name]] = -1.0
        effects[np.arange(len(ids)), np.asarray(ids) - 5] = 0.0
        return Mutagenesis(name, np.asarray(ids), effects, self.kind, self.measure)


def test_cli_tables_report_and_picture_say_no_significant_match(tiny_export, tmp_path, monkeypatch, capsys):
    text, start = planted_ctcf(15)
    noise = random_dna(np.random.default_rng(16), len(text))
    monkeypatch.setattr(interpret, "SaturationMutagenesis", PlantedImportance)
    monkeypatch.setattr(PlantedImportance, "planted", {"planted": slice(start + 4, start + 14),
                                                       "random": slice(40, 50)})
    fasta = tmp_path / "two.fa"
    fasta.write_text(f">planted\n{text}\n>random\n{noise}\n")
    out = tmp_path / "out"
    summary = interpret.main(["--model", str(tiny_export), "--fasta", str(fasta), "--motifs", TRANSFAC,
                              "--taxon", "vertebrates", "--segments", "1", "--output-dir", str(out)])
    console = capsys.readouterr().out
    assert summary["motifs_compared"] == 879 and summary["max_evalue"] == MAX_EVALUE
    planted = (out / "planted" / "motif_matches.tsv").read_text().splitlines()
    header = planted[0].split("\t")
    assert header == list(motif_match.MATCH_COLUMNS)
    row = dict(zip(header, planted[1].split("\t")))
    assert (row["motif_id"], row["motif_name"], row["strand"]) == ("MA0139.2", "CTCF", "+")
    assert start <= int(row["start"]) < int(row["end"]) <= start + 19
    assert float(row["e_value"]) < MAX_EVALUE
    (random_row,) = [dict(zip(header, line.split("\t")))
                     for line in (out / "random" / "motif_matches.tsv").read_text().splitlines()[1:]]
    assert (random_row["motif_id"], random_row["motif_name"], random_row["rank"]) == ("", NO_MATCH, "")
    assert float(random_row["e_value"]) > MAX_EVALUE
    assert "MA0139.2 CTCF" in console and f"{NO_MATCH} (best E = " in console
    report = (out / "report.html").read_text()
    assert NO_MATCH in report and "taxon vertebrates: 879 motifs" in report and "E &lt;= 0.05" in report


def test_picture_of_no_significant_match_draws_no_motif(vertebrates):
    text = random_dna(np.random.default_rng(17), 60)
    ids = encode_sequence(text)
    effects = np.full((60, 4), -0.01)
    effects[20:30] = -1.0
    effects[np.arange(60), ids - 5] = 0.0
    result = Mutagenesis("r", ids, effects, "classifier", "test")
    matches = match_segments("r", ids, important_segments(result.importance, count=1), vertebrates)
    figure = plots.motif_matches(result, matches, {m.id: m for m in vertebrates})
    learned, known = figure.axes
    assert not known.axison and any(NO_MATCH in t.get_text() for t in known.texts)
    assert "MA" not in known.get_title()


# ------------------------------------------------------------------------------------------- coordinates
@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    """chrT: 300 random bases (plain FASTA) and a BED file: a minus-strand region, a plus one, an unstranded one;
    the minus one holds a reverse-complemented strong CTCF site, so that motif tables have rows to map back."""
    folder = tmp_path_factory.mktemp("genome")
    rng = np.random.default_rng(21)
    site, _ = planted_ctcf(22, flank=0)
    chrom = random_dna(rng, 100) + site[:19].translate(COMPLEMENT)[::-1] + random_dna(rng, 181)
    (folder / "ref.fa").write_text(f">chrT\n{chrom}\n")
    (folder / "regions.bed").write_text("chrT\t90\t130\tminus\t0\t-\nchrT\t200\t240\tplus\t0\t+\n"
                                        "chrT\t250\t280\n")
    return folder, chrom


@pytest.mark.slow
def test_minus_strand_region_maps_back_to_the_genome(genome, tiny_export, tmp_path):
    folder, chrom = genome
    out = tmp_path / "bed"
    interpret.main(["--model", str(tiny_export), "--bed", str(folder / "regions.bed"), "--reference",
                    str(folder / "ref.fa"), "--motifs", MEME, "--scan", "--max-evalue", "1e9", "--attention",
                    "--output-dir", str(out), "--quiet"])
    regions = {"minus": (90, 130, "-"), "plus": (200, 240, "+"), "chrT_251-280": (250, 280, ".")}
    for folder_name, (start, end, strand) in regions.items():
        for table in ("ism.tsv", "attention.tsv"):
            lines = (out / folder_name / table).read_text().splitlines()
            header = lines[0].split("\t")
            assert header[-6:] == ["chrom", "region_start", "region_end", "region_strand", "genome_start",
                                   "genome_end"]
            rows = [dict(zip(header, line.split("\t"))) for line in lines[1:]]
            assert len(rows) == end - start
            for i, row in enumerate(rows):
                assert (row["chrom"], row["region_start"], row["region_end"], row["region_strand"]) == \
                    ("chrT", str(start), str(end), strand)
                g = int(row["genome_start"])
                assert int(row["genome_end"]) == g + 1 and int(row["position"]) == i + 1
                base = row["reference"] if table == "ism.tsv" else row["base"]
                if strand == "-":
                    assert g == end - 1 - i and base == chrom[g].translate(COMPLEMENT)
                else:
                    assert g == start + i and base == chrom[g]
        # Motif tables: each site's genome interval, read on its genome strand, is the site.
        lines = (out / folder_name / "motif_matches.tsv").read_text().splitlines()
        header = lines[0].split("\t")
        assert header[-9:] == ["chrom", "region_start", "region_end", "region_strand", "segment_genome_start",
                               "segment_genome_end", "genome_start", "genome_end", "genome_strand"]
        for line in lines[1:]:
            row = dict(zip(header, line.split("\t")))
            check_site(chrom, row)
            assert sorted(interval(row, "segment_genome_")) == sorted(
                map_back(start, end, strand, int(row["segment_start"]), int(row["segment_end"])))
    hits = (out / "motif_hits.tsv").read_text().splitlines()
    header = hits[0].split("\t")
    assert header[-7:] == ["chrom", "region_start", "region_end", "region_strand", "genome_start", "genome_end",
                           "genome_strand"]
    rows = [dict(zip(header, line.split("\t"))) for line in hits[1:]]
    assert {row["sequence"] for row in rows} >= {"minus", "plus"}
    for row in rows:
        check_site(chrom, row)
    ctcf = [row for row in rows if row["motif_id"] == "MA0139.1" and row["sequence"] == "minus"]
    # The site was planted reverse-complemented at 100-119: the minus region reads it on its own plus strand.
    assert any((row["strand"], row["genome_start"], row["genome_end"], row["genome_strand"]) == ("+", "100", "119",
                                                                                                 "-") for row in ctcf)
    report = (out / "report.html").read_text()
    assert "chrT:90-130 (-; BED, 0-based)" in report and "genome position 130 - 1 - i" in report


def interval(row, prefix="genome_"):
    return int(row[prefix + "start"]), int(row[prefix + "end"])


def map_back(start, end, strand, first, last):
    return (end - last, end - first) if strand == "-" else (start + first, start + last)


def check_site(chrom, row):
    if not row["motif_id"]:
        return
    first, last = interval(row)
    plus = chrom[first:last]
    assert row["site"] == (plus[::-1].translate(COMPLEMENT) if row["genome_strand"] == "-" else plus), row
    assert (first, last) == map_back(int(row["region_start"]), int(row["region_end"]), row["region_strand"],
                                     int(row["start"]), int(row["end"]))


def test_titles_name_the_region_and_strand(genome):
    folder, chrom = genome
    source = BedRegions(str(folder / "regions.bed"), str(folder / "ref.fa"))
    region = source.regions[0]
    ids = source.fetch(region)
    result = Mutagenesis("minus", ids, -np.random.default_rng(23).random((len(ids), 4)), "generator", "test")
    for figure in (plots.ism_logo(result, region=region), plots.ism_heatmap(result, region=region)):
        assert "chrT:90-130 (-; BED, 0-based)" in figure.axes[0].get_title()
        labels = [label.get_text() for label in figure.axes[0].get_xticklabels()]
        assert labels[0] == "1\n129" and labels[1] == "10\n120"  # sequence position (from 1) over genome (0-based)


def test_embed_ids_and_parquet_carry_the_bed_region(genome, tiny_export, tmp_path):
    import pyarrow.parquet as pq

    folder, chrom = genome
    embedder = embed.Embedder.from_pretrained(str(tiny_export), device="cpu", window=64, overlap=16)

    def source():
        return embed.BedRegions(str(folder / "regions.bed"), str(folder / "ref.fa"))

    quiet = dict(quiet=True, log=lambda line: None)
    embed.embed_to_file(embedder, source(), str(tmp_path / "r.npy"), **quiet)
    assert (tmp_path / "r.ids.tsv").read_text().splitlines() == [
        "id\tlength\tacgt_bases\tchrom\tstart\tend\tstrand", "minus\t40\t40\tchrT\t90\t130\t-",
        "plus\t40\t40\tchrT\t200\t240\t+", "chrT:251-280\t30\t30\tchrT\t250\t280\t."]
    embed.embed_to_file(embedder, source(), str(tmp_path / "r.parquet"), "parquet", **quiet)
    table = pq.read_table(tmp_path / "r.parquet").to_pydict()
    assert (table["chrom"], table["start"], table["end"], table["strand"]) == (
        ["chrT"] * 3, [90, 200, 250], [130, 240, 280], ["-", "+", "."])
    embed.embed_to_file(embedder, source(), str(tmp_path / "b.parquet"), "parquet", per_base=True, **quiet)
    table = pq.read_table(tmp_path / "b.parquet").to_pydict()
    for i in range(len(table["id"])):
        g, base = table["genome_position"][i], table["base"][i]
        if table["strand"][i] == "-":
            assert g == table["end"][i] - 1 - table["position"][i] and base == chrom[g].translate(COMPLEMENT)
        else:
            assert g == table["start"][i] + table["position"][i] and base == chrom[g]
    first = table["id"].index("minus")
    assert (table["position"][first], table["genome_position"][first]) == (0, 129)
    # FASTA input keeps its columns.
    (tmp_path / "a.fa").write_text(">a\nACGTACGTAC\n")
    embed.embed_to_file(embedder, embed.FastaRecords(str(tmp_path / "a.fa")), str(tmp_path / "a.npy"), **quiet)
    assert (tmp_path / "a.ids.tsv").read_text().splitlines()[0] == "id\tlength\tacgt_bases"
