"""Which known motifs sit where a model looks: high-importance segments of an ISM profile matched against JASPAR.

A segment is the `width`-base window with the largest sum of positive importance; further segments are the next
best windows that do not overlap those taken, while their sum is at least `min_fraction` of the first one's.
Each motif is then scored (pwm.py: log-odds against the sequence's own background, exact p-values) at every
placement on either strand that overlaps the segment by at least half the shorter of the two; its best placement
is its match. Several placements were tried, so a match's p-value is corrected for them (Sidak:
1 - (1 - p)^placements), and the E-value multiplies that by the number of motifs compared (after --taxon). Matches
are ranked by the corrected p-value.

Significance: a match is reported only when its E-value is at most `max_evalue` (default MAX_EVALUE = 0.05,
`nucel-interpret --max-evalue`); a segment whose best motif misses it is reported as "no significant match" (with
that best E-value, but no motif) in the table, the report and the picture. The E-value is the expected number of
motifs of the file that would match a segment of random DNA (of the sequence's composition) this well, so E <= 0.05
calls a match at a family-wise 5% level over the whole motif file, per segment: the usual bar for "significant".
Measured on random 100-bp sequences against the 746 JASPAR 2020 vertebrate motifs, the best motif of a random
10-bp segment has a median E of about 2 and E <= 0.05 in under 5% of segments. MEME-suite's Tomtom lists motifs up
to q <= 0.5 (or E <= 10 with -evalue) by default: a shortlist of candidates, not a call; `--max-evalue 10` gives
such a list here.
"""

import math
from dataclasses import dataclass

import numpy as np

from nucel.inference.interpretation.coordinates import REGION_COLUMNS, interval_fields, region_fields
from nucel.inference.interpretation.pwm import base_codes, make_hit, score_motifs

SEGMENT_WIDTH = 10
MIN_FRACTION = 0.25
MAX_EVALUE = 0.05  # a match is significant at E <= this (see the module docstring)
NO_MATCH = "no significant match"


@dataclass(frozen=True)
class Segment:
    start: int  # 0-based, half-open
    end: int
    importance: float  # the sum of positive importance inside


@dataclass(frozen=True)
class MotifMatch:
    """A significant match (E <= max_evalue), or a segment's "no significant match" (significant False, hit and
    rank None; placements, segment_p_value and e_value those of the best motif, NaN when no motif fits)."""

    segment: Segment
    rank: int
    hit: object  # pwm.Hit: the best placement
    placements: int  # placements tried (both strands)
    segment_p_value: float
    e_value: float
    significant: bool = True


def important_segments(importance, count=3, width=SEGMENT_WIDTH, min_fraction=MIN_FRACTION):
    """Up to `count` non-overlapping windows of `width` bases, largest summed positive importance first."""
    positive = np.clip(np.nan_to_num(np.asarray(importance, dtype=np.float64)), 0.0, None)
    width = min(width, len(positive))
    sums = np.convolve(positive, np.ones(width), mode="valid")
    taken = np.zeros(len(sums), dtype=bool)
    segments = []
    while len(segments) < count:
        candidates = np.where(taken, -np.inf, sums)
        start = int(np.argmax(candidates))
        best = candidates[start]
        if not np.isfinite(best) or best <= 0 or (segments and best < min_fraction * segments[0].importance):
            break
        segments.append(Segment(start, start + width, float(best)))
        taken[max(0, start - width + 1):start + width] = True  # no later window may overlap this one
    return segments


def match_segments(name, ids, segments, motifs, top=3, scored=None, max_evalue=MAX_EVALUE):
    """The `top` best motif matches of each segment with E-value <= `max_evalue`, as MotifMatch rows (segment order,
    then rank); a segment with none gets one MotifMatch with significant False (and no hit).
    `scored`: score_motifs(motifs, ids) when the caller already has it."""
    codes = base_codes(ids)
    per_segment = [[] for _ in segments]
    for scored_motif in scored or score_motifs(motifs, ids):
        motif = scored_motif.motif
        if motif.width > len(codes):
            continue
        readings = scored_motif.site_scores(codes)
        for index, segment in enumerate(segments):
            need = math.ceil(min(segment.end - segment.start, motif.width) / 2)
            # Starts whose site [s, s + width) overlaps the segment by at least `need` bases.
            first = max(0, segment.start + need - motif.width)
            last = min(len(codes) - motif.width, segment.end - need)
            if last < first:
                continue
            best = None
            for strand, (grid_scores, bits) in zip("+-", readings):
                window = grid_scores[first:last + 1]
                start = first + int(np.argmax(window))
                if best is None or grid_scores[start] > best[2]:
                    best = (strand, start, grid_scores[start], bits[start])
            strand, start, grid_score, bits = best
            if not np.isfinite(bits):
                continue
            p_value = float(scored_motif.p_values(grid_score))
            placements = 2 * (last - first + 1)
            corrected = -math.expm1(placements * math.log1p(-min(p_value, 1 - 1e-16)))
            hit = make_hit(name, scored_motif, ids, start, strand, float(bits), p_value)
            per_segment[index].append((corrected, hit, placements))
    matches = []
    for index, found in enumerate(per_segment):
        found.sort(key=lambda item: (item[0], -item[1].score, item[1].motif_id))
        passing = [item for item in found[:top] if item[0] * len(motifs) <= max_evalue]
        for rank, (corrected, hit, placements) in enumerate(passing, start=1):
            matches.append(MotifMatch(segments[index], rank, hit, placements, corrected,
                                      corrected * len(motifs)))
        if not passing:
            corrected, _, placements = found[0] if found else (float("nan"), None, 0)
            matches.append(MotifMatch(segments[index], None, None, placements, corrected, corrected * len(motifs),
                                      significant=False))
    return matches


MATCH_COLUMNS = ("sequence", "segment_start", "segment_end", "segment_importance", "rank", "motif_id",
                 "motif_name", "start", "end", "strand", "score", "p_value", "placements", "segment_p_value",
                 "e_value", "site")
GENOME_MATCH_COLUMNS = (*REGION_COLUMNS, "segment_genome_start", "segment_genome_end", "genome_start", "genome_end",
                        "genome_strand")  # BED regions: coordinates.py


def match_columns(regions=False):
    """The columns of match_row, with the genome's when the sequences are BED regions."""
    return MATCH_COLUMNS + (GENOME_MATCH_COLUMNS if regions else ())


def _number(value, form):
    return "" if value is None or not math.isfinite(value) else format(value, form)


def match_row(match, name=None, region=None):
    """A match as table cells: a "no significant match" row names no motif and keeps the best E-value reached.
    `name`: the sequence's (needed for such a row); `region`: its BED region, for the genome columns."""
    hit, segment = match.hit, match.segment
    sequence = hit.sequence if hit is not None else name or ""
    row = [sequence, str(segment.start), str(segment.end), f"{segment.importance:.4g}"]
    if hit is not None:
        row += [str(match.rank), hit.motif_id, hit.motif_name, str(hit.start), str(hit.end), hit.strand,
                f"{hit.score:.3f}", f"{hit.p_value:.3g}"]
    else:
        row += ["", "", NO_MATCH, "", "", "", "", ""]
    row += [str(match.placements) if match.placements else "", _number(match.segment_p_value, ".3g"),
            _number(match.e_value, ".3g"), hit.site if hit is not None else ""]
    if region is not None:
        row += [*region_fields(region), *interval_fields(region, segment.start, segment.end)]
        row += [*interval_fields(region, hit.start, hit.end), region.genome_strand(hit.strand)] if hit is not None \
            else ["", "", ""]
    return row


def describe_match(match, max_evalue=MAX_EVALUE, region=None):
    """One line for the console: a segment's match (bases counted from 1, as on the pictures; with the genome
    interval, BED-style, for a BED region), or that it has none below the threshold."""
    segment = f"segment {match.segment.start + 1}-{match.segment.end}"
    if region is not None:
        start, end = region.genome_interval(match.segment.start, match.segment.end)
        segment += f" ({region.chrom}:{start}-{end}, BED 0-based)"
    if match.significant:
        hit = match.hit
        where = f"{hit.start + 1}-{hit.end} ({hit.strand})"
        if region is not None:
            start, end = region.genome_interval(hit.start, hit.end)
            where += f" = {region.chrom}:{start}-{end} ({region.genome_strand(hit.strand)}; BED 0-based)"
        return f"{segment}: #{match.rank} {hit.motif_id} {hit.motif_name} at {where}, E = {match.e_value:.2g}"
    best = f"best E = {match.e_value:.2g}" if math.isfinite(match.e_value) else "no motif fits"
    return f"{segment}: {NO_MATCH} ({best}; significant: E <= {max_evalue:g})"
