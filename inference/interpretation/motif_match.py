"""Which known motifs sit where a model looks: high-importance segments of an ISM profile matched against JASPAR.

A segment is the `width`-base window with the largest sum of positive importance; further segments are the next
best windows that do not overlap those taken, while their sum is at least `min_fraction` of the first one's.
Each motif is then scored (pwm.py: log-odds against the sequence's own background, exact p-values) at every
placement on either strand that overlaps the segment by at least half the shorter of the two; its best placement
is its match. Several placements were tried, so a match's p-value is corrected for them (Sidak:
1 - (1 - p)^placements), and the E-value multiplies that by the number of motifs compared. Matches are ranked by
the corrected p-value.
"""

import math
from dataclasses import dataclass

import numpy as np

from inference.interpretation.pwm import base_codes, make_hit, score_motifs

SEGMENT_WIDTH = 10
MIN_FRACTION = 0.25


@dataclass(frozen=True)
class Segment:
    start: int  # 0-based, half-open
    end: int
    importance: float  # the sum of positive importance inside


@dataclass(frozen=True)
class MotifMatch:
    segment: Segment
    rank: int
    hit: object  # pwm.Hit: the best placement
    placements: int  # placements tried (both strands)
    segment_p_value: float
    e_value: float


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


def match_segments(name, ids, segments, motifs, top=3, scored=None):
    """The `top` best motif matches of each segment, as MotifMatch rows (segment order, then rank).
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
        for rank, (corrected, hit, placements) in enumerate(found[:top], start=1):
            matches.append(MotifMatch(segments[index], rank, hit, placements, corrected,
                                      corrected * len(motifs)))
    return matches


MATCH_COLUMNS = ("sequence", "segment_start", "segment_end", "segment_importance", "rank", "motif_id",
                 "motif_name", "start", "end", "strand", "score", "p_value", "placements", "segment_p_value",
                 "e_value", "site")


def match_row(match):
    hit = match.hit
    return [hit.sequence, str(match.segment.start), str(match.segment.end), f"{match.segment.importance:.4g}",
            str(match.rank), hit.motif_id, hit.motif_name, str(hit.start), str(hit.end), hit.strand,
            f"{hit.score:.3f}", f"{hit.p_value:.3g}", str(match.placements), f"{match.segment_p_value:.3g}",
            f"{match.e_value:.3g}", hit.site]
