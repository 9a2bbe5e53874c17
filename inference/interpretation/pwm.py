"""Scan DNA for motif sites: a log-odds position weight matrix score at every position of both strands, with the
exact p-value of each score.

Scores are log2((p + pseudocount * background) / (1 + pseudocount) / background) summed over the site, as in
MEME-suite's FIMO (motif pseudocount 0.1); the background is the scanned sequence's own A/C/G/T composition, both
strands (one pseudocount per base). P-values are exact for the rounded scores: column scores are put on a grid of at
most `GRID_BINS` steps and the distribution of their sum over random background sequence is built column by column
(the dynamic programme FIMO and TFM-PValue use), so a p-value is the probability that a random site scores at
least as high. A hit on the minus strand is reported with the plus-strand coordinates of the bases it covers and
its site read on the minus strand.

A scan makes many tests: every placement of every motif on both strands. A hit's E-value is its p-value times that
number (the expected count of sites scoring at least as well in random sequence of the same composition,
Bonferroni), and only hits with E <= the significance threshold (motif_match.MAX_EVALUE, `--max-evalue`) are called
significant; hits with p <= `max_p` are listed either way.
"""

from dataclasses import dataclass

import numpy as np

from nucel.inference.interpretation.coordinates import REGION_COLUMNS, interval_fields, region_fields
from nucel.tokenization import alphabet
from nucel.tokenization.encoding import decode_bases, reverse_complement

MOTIF_PSEUDOCOUNT = 0.1
GRID_BINS = 20_000  # the largest possible score range of a motif, in grid steps


def base_codes(ids):
    """Token ids -> 0..3 for A, C, G, T and -1 for anything else (N never scores)."""
    codes = np.asarray(ids, dtype=np.int64) - alphabet.A_ID
    codes[(codes < 0) | (codes > 3)] = -1
    return codes


def background(ids):
    """A, C, G, T frequencies of a sequence and its reverse complement (so both strands share one null, as in
    MEME-suite), one pseudocount each (so a base it lacks is not impossible)."""
    codes = base_codes(ids)
    counts = np.bincount(codes[codes >= 0], minlength=4).astype(np.float64)
    counts = counts + counts[::-1] + 1.0
    return counts / counts.sum()


@dataclass(frozen=True)
class Hit:
    sequence: str
    motif_id: str
    motif_name: str
    start: int  # 0-based, half-open, on the plus strand (for either strand)
    end: int
    strand: str
    score: float  # log-odds, bits
    p_value: float
    site: str  # the bases of the site read on its strand (the reverse complement for '-')
    e_value: float = None  # scan(): p-value x the tests of the scan (every placement of every motif, both strands)


class ScoredMotif:
    """One motif's log-odds matrix against a background, with the exact null distribution of its scores."""

    def __init__(self, motif, background_frequencies, pseudocount=MOTIF_PSEUDOCOUNT):
        self.motif = motif
        bg = np.asarray(background_frequencies, dtype=np.float64)
        smoothed = (motif.probabilities + pseudocount * bg) / (1.0 + pseudocount)
        self.log_odds = np.log2(smoothed / bg)  # (width, 4)
        column_ranges = self.log_odds.max(1) - self.log_odds.min(1)
        self.step = max(float(column_ranges.sum()) / GRID_BINS, 1e-9)
        self.grid = np.rint(self.log_odds / self.step).astype(np.int64)
        self.minimum = int(self.grid.min(1).sum())
        self.tail = self._tail(bg)

    def _tail(self, bg):
        """tail[s - minimum] = P(grid score >= s) for a site drawn from the background."""
        low = self.grid.min(1)
        distribution = np.ones(1)
        for column, lowest in zip(self.grid, low):
            shifted = column - lowest
            grown = np.zeros(len(distribution) + shifted.max())
            for base in range(4):
                grown[shifted[base]:shifted[base] + len(distribution)] += bg[base] * distribution
            distribution = grown
        return np.clip(np.cumsum(distribution[::-1])[::-1], 0.0, 1.0)

    def p_values(self, grid_scores):
        return self.tail[np.asarray(grid_scores) - self.minimum]

    def threshold(self, max_p):
        """The lowest grid score whose p-value is at most `max_p` (one past the maximum when none is)."""
        passing = np.nonzero(self.tail <= max_p)[0]
        return self.minimum + (int(passing[0]) if len(passing) else len(self.tail))

    def site_scores(self, codes):
        """(plus, minus), each (grid scores, log-odds) of every site start (len(codes) - width + 1 of them); a site
        holding a base other than A/C/G/T gets grid score minimum - 1 and log-odds -inf."""
        width = self.motif.width
        if len(codes) < width:
            empty = np.zeros(0)
            return (empty, empty), (empty, empty)
        windows = np.lib.stride_tricks.sliding_window_view(codes, width)
        valid = (windows >= 0).all(1)
        safe = np.where(windows >= 0, windows, 0)
        positions = np.arange(width)
        readings = []
        # The minus strand reads the motif's reverse complement over the same bases.
        for grid, log_odds in ((self.grid, self.log_odds), (self.grid[::-1, ::-1], self.log_odds[::-1, ::-1])):
            grid_scores = np.where(valid, grid[positions, safe].sum(1), self.minimum - 1)
            bits = np.where(valid, log_odds[positions, safe].sum(1), -np.inf)
            readings.append((grid_scores, bits))
        return readings[0], readings[1]


def score_motifs(motifs, ids):
    """Every motif against the background of `ids`: what scan() and motif matching share for one sequence."""
    bg = background(ids)
    return [ScoredMotif(motif, bg) for motif in motifs]


def scan_tests(length, motifs):
    """How many sites a scan of a `length`-base sequence scores: every placement of every motif, both strands."""
    return sum(2 * max(0, length - motif.width + 1) for motif in motifs)


def scan(name, ids, motifs, max_p=1e-4, scored=None):
    """Hits of every motif on both strands of one sequence (token ids) with p-value <= max_p, by position, each
    with its E-value over the whole scan (scan_tests). `scored`: score_motifs(motifs, ids) when the caller already
    has it."""
    codes = base_codes(ids)
    scored = scored or score_motifs(motifs, ids)
    tests = scan_tests(len(codes), [motif.motif for motif in scored])
    hits = []
    for motif in scored:
        cutoff = motif.threshold(max_p)
        for strand, (grid_scores, bits) in zip("+-", motif.site_scores(codes)):
            for start in np.nonzero(grid_scores >= cutoff)[0]:
                p_value = float(motif.p_values(grid_scores[start]))
                hits.append(make_hit(name, motif, ids, int(start), strand, float(bits[start]), p_value,
                                     p_value * tests))
    return sorted(hits, key=lambda hit: (hit.start, hit.strand, hit.p_value, hit.motif_id))


def make_hit(name, scored, ids, start, strand, bits, p_value, e_value=None):
    end = start + scored.motif.width
    site = ids[start:end] if strand == "+" else reverse_complement(ids[start:end])
    return Hit(name, scored.motif.id, scored.motif.name, start, end, strand, bits, p_value, decode_bases(site),
               e_value)


HIT_COLUMNS = ("sequence", "motif_id", "motif_name", "start", "end", "strand", "score", "p_value", "site", "e_value")
GENOME_HIT_COLUMNS = (*REGION_COLUMNS, "genome_start", "genome_end", "genome_strand")  # BED regions: coordinates.py


def hit_columns(regions=False):
    """The columns of hit_row, with the genome's when the sequences are BED regions."""
    return HIT_COLUMNS + (GENOME_HIT_COLUMNS if regions else ())


def hit_row(hit, region=None):
    """A hit as table cells; with its BED `region`, also where it lies on the genome (coordinates.py)."""
    row = [hit.sequence, hit.motif_id, hit.motif_name, str(hit.start), str(hit.end), hit.strand,
           f"{hit.score:.3f}", f"{hit.p_value:.3g}", hit.site, "" if hit.e_value is None else f"{hit.e_value:.3g}"]
    if region is not None:
        row += [*region_fields(region), *interval_fields(region, hit.start, hit.end), region.genome_strand(hit.strand)]
    return row
