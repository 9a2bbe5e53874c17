"""JASPAR motif files and the PWM scan (inference/interpretation/motif_files.py, pwm.py, motif_match.py).

The oracles: the scan against a brute-force loop over every position and strand, its p-values against the
enumeration of every possible site, a planted reverse-strand site found at its plus-strand coordinates, and the
shipped JASPAR files read in full."""

import gzip
import itertools
import os

import numpy as np
import pytest
from conftest import SHARED_DATA, strong_site

from nucel.inference.interpretation.motif_files import Motif, read_motifs
from nucel.inference.interpretation.motif_match import important_segments, match_segments
from nucel.inference.interpretation.pwm import ScoredMotif, background, scan
from nucel.tokenization import encode_sequence

MEME = os.path.join(SHARED_DATA, "motifs", "JASPAR2020_CORE_vertebrates_non-redundant_pfms_meme.txt.gz")
TRANSFAC = os.path.join(SHARED_DATA, "motifs", "jaspar2024_core.transfac.gz")
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def random_motif(rng, width, motif_id="M1"):
    return Motif(motif_id, motif_id, rng.dirichlet(np.full(4, 0.5), size=width), 20.0)


def test_shipped_jaspar_files_are_read_in_full():
    meme = read_motifs(MEME)
    transfac = read_motifs(TRANSFAC)
    assert (len(meme), len(transfac)) == (746, 2346)  # the counts the data README states
    for motifs in (meme, transfac):
        for motif in motifs:
            assert motif.probabilities.shape == (motif.width, 4)
            np.testing.assert_allclose(motif.probabilities.sum(1), 1.0, atol=1e-9)
    ctcf = {m.id: m for m in meme}["MA0139.1"]
    assert (ctcf.name, ctcf.width) == ("CTCF", 19)
    agl3 = transfac[0]  # AC MA0001.3, ID AGL3, first row 0 92 0 3 over A C G T
    assert (agl3.id, agl3.name, agl3.sites) == ("MA0001.3", "AGL3", 95.0)
    np.testing.assert_allclose(agl3.probabilities[0], np.array([0, 92, 0, 3]) / 95)


def test_transfac_column_order_and_consensus_letter(tmp_path):
    path = tmp_path / "m.transfac"
    path.write_text("AC X1\nXX\nID one\nXX\nP0 T G C A\n01 1 2 3 4 A\n02 0 0 0 5 A\nXX\nCC tax_group:Fungi\n"
                    "CC tf_family:x\nXX\n//\nAC X2\nP0 A C G T\n01 1 1 1 1\n//\n")
    motif, untaxed = read_motifs(str(path))
    np.testing.assert_allclose(motif.probabilities, [[0.4, 0.3, 0.2, 0.1], [1, 0, 0, 0]])
    assert (motif.taxon, untaxed.taxon) == ("fungi", None)  # JASPAR's `CC tax_group:` line, lower case


@pytest.mark.parametrize("text, message", [
    (">MA0001.1 AGL3\nA [ 0 3 79 ]\n", "unknown motif file format"),
    ("MEME version 4\n\nMOTIF M1 one\nletter-probability matrix: alength= 4 w= 2\n0.5 0.5 0 0\n0.9 0 0 0\n",
     ":6: motif M1 has a row that does not sum to 1"),
    ("MEME version 4\n\nMOTIF M1 one\nletter-probability matrix: alength= 4 w= 3\n0.5 0.5 0 0\n",
     "motif M1 ends after 1 of its 3 rows"),
    ("MEME version 4\nALPHABET= ACDEFGHIKLMNPQRSTVWY\n", "DNA motifs over ACGT expected"),
    ("MEME version 4\n\nALPHABET= ACGT\n", "no motifs in the file"),
    ("AC X1\nXX\nP0 A C G T\n01 1 2 x 4\n//\n", ":4: expected 4 numbers"),
])
def test_bad_motif_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "motifs.txt.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(text)
    with pytest.raises(ValueError, match=message) as raised:
        read_motifs(str(path))
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


def brute_force_scores(motif_log_odds, codes):
    """{(start, strand): log-odds} by explicit loops; the minus strand reads the complement backwards."""
    width, scores = len(motif_log_odds), {}
    for start in range(len(codes) - width + 1):
        site = codes[start:start + width]
        if (site < 0).any():
            continue
        scores[start, "+"] = sum(motif_log_odds[j, site[j]] for j in range(width))
        scores[start, "-"] = sum(motif_log_odds[j, 3 - site[width - 1 - j]] for j in range(width))
    return scores


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scan_agrees_with_brute_force(seed):
    rng = np.random.default_rng(seed)
    text = "".join(rng.choice(list("ACGTN"), p=[0.3, 0.2, 0.2, 0.28, 0.02], size=300))
    ids = encode_sequence(text)
    codes = np.array(["ACGT".find(c) for c in text])
    motifs = [random_motif(rng, width, f"M{width}") for width in (3, 5, 8)]
    hits = scan("s", ids, motifs, max_p=1.0)  # every site
    bg = background(ids)
    for motif in motifs:
        scored = ScoredMotif(motif, bg)
        expected = brute_force_scores(scored.log_odds, codes)
        found = {(h.start, h.strand): h for h in hits if h.motif_id == motif.id}
        assert set(found) == set(expected)
        for key, hit in found.items():
            assert hit.score == pytest.approx(expected[key], abs=1e-9)
            assert hit.end - hit.start == motif.width
            plus = text[hit.start:hit.end]
            assert hit.site == (plus if hit.strand == "+" else plus[::-1].translate(COMPLEMENT))
        # Thresholding keeps exactly the sites whose p-value passes.
        cut = scan("s", ids, [motif], max_p=0.01)
        assert {(h.start, h.strand) for h in cut} == {k for k, h in found.items() if h.p_value <= 0.01}


def test_p_values_equal_enumeration_of_every_site():
    rng = np.random.default_rng(3)
    motif = random_motif(rng, 5)
    bg = np.array([0.3, 0.2, 0.2, 0.3])
    scored = ScoredMotif(motif, bg)
    sites = np.array(list(itertools.product(range(4), repeat=5)))
    grid = scored.grid[np.arange(5), sites].sum(1)
    probability = bg[sites].prod(1)
    for score in np.unique(grid)[::37]:
        assert scored.p_values(score) == pytest.approx(probability[grid >= score].sum(), rel=1e-9)


def test_reverse_strand_site_is_reported_at_plus_strand_coordinates():
    ctcf = {m.id: m for m in read_motifs(MEME)}["MA0139.1"]
    consensus = "".join("ACGT"[i] for i in ctcf.probabilities.argmax(1))
    rng = np.random.default_rng(4)
    flank = "".join(rng.choice(list("ACGT"), 200))
    text = flank[:77] + consensus[::-1].translate(COMPLEMENT) + flank[77:]
    hits = [h for h in scan("s", encode_sequence(text), [ctcf], max_p=1e-6)]
    assert [(h.start, h.end, h.strand, h.site) for h in hits] == [(77, 96, "-", consensus)]
    assert hits[0].p_value < 1e-8


def test_segments_are_the_most_important_windows_and_do_not_overlap():
    importance = np.zeros(100)
    importance[20:30] = 1.0
    importance[60:64] = 2.0
    importance[80:90] = -5.0  # negative importance never makes a segment
    segments = important_segments(importance, count=5, width=10)
    assert [(s.start, s.end) for s in segments] == [(20, 30), (56, 66)] or \
        [(s.start, s.end) for s in segments][0] == (20, 30)
    for a, b in itertools.combinations(segments, 2):
        assert a.end <= b.start or b.end <= a.start
    assert all(s.end <= 80 or s.start >= 90 for s in segments)
    assert important_segments(np.full(50, -1.0)) == []


def test_segment_match_names_the_planted_motif():
    motifs = read_motifs(MEME)
    ctcf = {m.id: m for m in motifs}["MA0139.1"]
    rng = np.random.default_rng(5)
    site = strong_site(ctcf, rng)
    text = "".join(rng.choice(list("ACGT"), 40)) + site + "".join(rng.choice(list("ACGT"), 41))
    importance = np.zeros(len(text))
    importance[44:54] = 1.0  # the model's attention, in the middle of the site
    segments = important_segments(importance, count=1)
    (best, *_) = match_segments("s", encode_sequence(text), segments, motifs, top=3)
    assert (best.hit.motif_id, best.hit.start, best.hit.strand, best.rank) == ("MA0139.1", 40, "+", 1)
    assert best.segment_p_value < 1e-3 and best.e_value == pytest.approx(best.segment_p_value * len(motifs))
