"""The pictures of `nucel-interpret` (matplotlib, Agg backend; sequence logos with logomaker).

Every function returns a matplotlib Figure; `save` writes it as PNG and closes it. Long sequences wrap: a panel
holds at most `ROW` positions. Positions on axes are 1-based, as genome browsers and the TSV files count. For a BED
region of a genome (`region`, an inputs.BedRegion) the titles name the region and its strand and each tick also
gives the genome coordinate of that base, BED-style (0-based; coordinates.py): for a '-' region, sequence position
i (from 1) is genome position region_end - i. Motif matches are drawn only when significant (motif_match.py); a
segment without one says so.
"""

import matplotlib

matplotlib.use("Agg")  # files only, never a window (and no display needed on servers)

import logomaker
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import PowerNorm, TwoSlopeNorm

from nucel.inference.interpretation.coordinates import genome_position, titled
from nucel.inference.interpretation.motif_match import MAX_EVALUE, NO_MATCH
from nucel.tokenization.alphabet import BASES

ROW = 100  # positions per logo / heat-map panel
COLORS = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839"}  # the usual nucleotide colours


def save(figure, path, dpi=110):
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return path


def _wrapped(length, row_height, extra_height):
    """A figure of one panel per ROW positions: (figure, [(axis, start, end)]), the width sized to a row."""
    rows = [(start, min(start + ROW, length)) for start in range(0, length, ROW)]
    figure, axes = plt.subplots(len(rows), 1, figsize=(2.0 + 12.0 * min(length, ROW) / ROW,
                                                       extra_height + row_height * len(rows)), squeeze=False)
    return figure, [(axis, start, end) for axis, (start, end) in zip(axes[:, 0], rows)]


def _letters(values, sequence):
    """A logo matrix with each position's reference letter at height `values` (other letters 0)."""
    matrix = pd.DataFrame(0.0, index=range(len(sequence)), columns=list(BASES))
    for position, letter in enumerate(sequence):
        if letter in BASES:
            matrix.loc[position, letter] = float(values[position])
    return matrix


def _positions_axis(axis, start, end, region=None):
    """Ticks at the panel's first base and every tenth, counted from 1; for a BED region also the genome coordinate
    of that base (0-based) beneath."""
    ticks = [tick for tick in range(start, end) if (tick + 1) % 10 == 0 or tick == start]
    axis.set_xticks(ticks)
    if region is None:
        axis.set_xticklabels([str(tick + 1) for tick in ticks], fontsize=7)
    else:
        axis.set_xticklabels([f"{tick + 1}\n{genome_position(region, tick)}" for tick in ticks], fontsize=6)
    axis.set_xlim(start - 0.5, end - 0.5)


def _genome_label(axis, region):
    if region is not None:
        axis.set_xlabel(f"position in the sequence (from 1) / on {region.chrom} (BED, 0-based; strand "
                        f"{region.strand})", fontsize=7)


def ism_heatmap(result, top_k=10, region=None):
    """Effects of every base at every position (A, C, G, T rows), reference bases dotted; one panel per ROW
    positions and a colour bar."""
    scale = float(np.nanmax(np.abs(result.effects))) or 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-scale, vmax=scale)
    figure, panels = _wrapped(len(result.ids), row_height=1.1, extra_height=1.2)
    sequence = result.sequence
    top = set(int(p) for p in result.top_positions(top_k))
    image = None
    for axis, start, end in panels:
        image = axis.imshow(result.effects[start:end].T, aspect="auto", cmap="RdBu_r", norm=norm,
                            extent=(start - 0.5, end - 0.5, 3.5, -0.5), interpolation="nearest")
        for position in range(start, end):
            if sequence[position] in BASES:
                axis.plot(position, BASES.index(sequence[position]), "o", color="black",
                          markersize=2.5 if position in top else 1.2)
        axis.set_yticks(range(4))
        axis.set_yticklabels(list(BASES), fontsize=8)
        _positions_axis(axis, start, end, region)
    _genome_label(panels[-1][0], region)
    panels[0][0].set_title(f"{titled(result.name, region)}: in-silico mutagenesis ({result.kind}; {result.measure}); "
                           "dots: reference", fontsize=9)
    colorbar = figure.colorbar(image, ax=[axis for axis, _, _ in panels], fraction=0.02, pad=0.01)
    colorbar.set_label("effect (negative: disfavoured)", fontsize=8)
    return figure


def ism_logo(result, top_k=10, hits=(), region=None):
    """Each reference letter scaled by its importance (below the line: the model prefers other bases there), the
    top-k positions marked, and motif sites (`hits`, pwm.Hit: the caller passes the significant ones) shaded with
    their names."""
    importance = result.importance
    matrix = _letters(importance, result.sequence)
    top = [int(p) for p in result.top_positions(top_k)]
    limit = float(np.nanmax(np.abs(importance))) or 1.0
    figure, panels = _wrapped(len(result.ids), row_height=1.6, extra_height=0.6)
    for axis, start, end in panels:
        logo = logomaker.Logo(matrix.iloc[start:end], ax=axis, color_scheme=COLORS, flip_below=False)
        logo.ax.axhline(0, color="grey", linewidth=0.5)
        axis.set_ylim(-1.25 * limit, 1.35 * limit)
        for level, hit in enumerate(hit for hit in hits if hit.start < end and hit.end > start):
            axis.axvspan(max(hit.start, start) - 0.5, min(hit.end, end) - 0.5, color="#7f7f7f", alpha=0.12)
            # Labels step down in three rows so that overlapping sites stay readable.
            axis.text(max(hit.start, start) - 0.4, -(0.88 + 0.12 * (level % 3)) * limit,
                      f"{hit.motif_name} {hit.strand}", fontsize=6, va="center")
        for rank, position in enumerate(top, start=1):
            if start <= position < end:
                axis.annotate(f"{position + 1}", (position, max(importance[position], 0) + 0.05 * limit),
                              ha="center", va="bottom", fontsize=6, color="black" if rank > 3 else "#b00000")
        _positions_axis(axis, start, end, region)
        axis.set_ylabel("importance", fontsize=7)
    _genome_label(panels[-1][0], region)
    panels[0][0].set_title(f"{titled(result.name, region)}: importance of each reference base ({result.kind}; top "
                           f"{len(top)} positions numbered)", fontsize=9)
    return figure


def information_matrix(probabilities):
    """A probability matrix as a logo in bits (letter height = probability x information content)."""
    frame = pd.DataFrame(probabilities, columns=list(BASES))
    return logomaker.transform_matrix(frame, from_type="probability", to_type="information")


def _span(result, start, end, region):
    """A stretch of the sequence for titles: name:from-to (counted from 1), and its genome interval (BED-style)."""
    text = f"{result.name}:{start + 1}-{end}"
    if region is not None:
        first, last = region.genome_interval(start, end)
        text += f" = {region.chrom}:{first}-{last} ({region.strand}; BED, 0-based)"
    return text


def motif_matches(result, matches, motifs_by_id, region=None, max_evalue=MAX_EVALUE):
    """One row per segment: its best significant match, the model's importance over the site (left) beside the
    JASPAR motif's logo in bits on the same strand and columns (right); or, for a segment without a significant
    match (motif_match.py), the importance over the segment beside the words "no significant match"."""
    rows = [match for match in matches if match.rank == 1 or not match.significant]
    figure, axes = plt.subplots(max(len(rows), 1), 2, figsize=(11, 0.4 + 1.8 * max(len(rows), 1)), squeeze=False)
    if not rows:
        for axis in axes[0]:
            axis.axis("off")
        axes[0, 0].set_title(f"{titled(result.name, region)}: no important segment to match", fontsize=9)
        return figure
    for (learned, known), match in zip(axes, rows):
        hit = match.hit
        start, end = (hit.start, hit.end) if hit is not None else (match.segment.start, match.segment.end)
        span = slice(start, end)
        logomaker.Logo(_letters(result.importance[span], result.sequence[span]).reset_index(drop=True), ax=learned,
                       color_scheme=COLORS, flip_below=False)
        learned.axhline(0, color="grey", linewidth=0.5)
        learned.set_title(f"model importance, {_span(result, start, end, region)}", fontsize=8)
        learned.set_xticks([])
        if hit is None:
            best = f"best E = {match.e_value:.2g} > {max_evalue:g}" if np.isfinite(match.e_value) else "no motif fits"
            known.axis("off")
            known.text(0.5, 0.5, f"{NO_MATCH}\n({best})", ha="center", va="center", fontsize=9, color="#555555",
                       transform=known.transAxes)
            continue
        probabilities = motifs_by_id[hit.motif_id].probabilities
        if hit.strand == "-":  # the motif read on the plus strand: reversed, complemented (ACGT -> TGCA)
            probabilities = probabilities[::-1, ::-1]
        logomaker.Logo(information_matrix(probabilities), ax=known, color_scheme=COLORS)
        known.set_ylim(0, 2)
        known.set_title(f"{hit.motif_id} {hit.motif_name} ({hit.strand}), p = {hit.p_value:.2g}, "
                        f"E = {match.e_value:.2g}", fontsize=8)
        known.set_xticks([])
    return figure


def attention_grid(maps, region=None):
    """Every layer (rows) and head (columns) as a base x base heat map (queries down, keys across; [CLS] and
    [SEP] left out). Local layers: dashed lines at the window's edges, outside which the weights are exactly 0."""
    layers, heads = maps.maps.shape[:2]
    length = len(maps.ids)
    size = 2.2 if heads <= 8 else 1.6
    figure, axes = plt.subplots(layers, heads, figsize=(size * heads + 0.5, size * layers + 0.6), squeeze=False)
    for layer in range(layers):
        local = maps.layer_types[layer] == "sliding_attention"
        for head in range(heads):
            axis = axes[layer, head]
            weights = maps.maps[layer, head, maps.bases, maps.bases]
            axis.imshow(weights, cmap="Blues", norm=PowerNorm(0.5, vmin=0.0, vmax=max(float(weights.max()), 1e-9)),
                        interpolation="nearest", extent=(0.5, length + 0.5, length + 0.5, 0.5))
            if local and maps.half_window < length:
                edge = np.array([1, length])
                for side in (-1, 1):
                    axis.plot(edge + side * maps.half_window, edge, "--", color="#d62728", linewidth=0.6)
                axis.set_xlim(0.5, length + 0.5)
                axis.set_ylim(length + 0.5, 0.5)
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(f"{maps.label(layer)} · head {head + 1}", fontsize=6)
    figure.suptitle(f"{titled(maps.name, region)}: attention, query (rows) x key (columns), {length} bp",
                    fontsize=9)
    return figure


def attention_profile(maps, region=None):
    """Per base: the attention it receives relative to uniform (all, local and global layers) and its rollout."""
    positions = np.arange(1, len(maps.ids) + 1)
    figure, (received, rollout) = plt.subplots(2, 1, figsize=(12, 5), sharex=True)
    received.plot(positions, maps.received(), color="black", linewidth=1.0, label="all layers")
    for (kind, values), color in zip(maps.received_by_type().items(), ("#1f77b4", "#ff7f0e")):
        received.plot(positions, values, color=color, linewidth=0.8, label=f"{kind} layers")
    received.axhline(1.0, color="grey", linewidth=0.5, linestyle=":")
    received.set_ylabel("attention received / uniform", fontsize=8)
    received.legend(fontsize=7)
    rollout.plot(positions, maps.rollout(), color="#2ca02c", linewidth=1.0)
    rollout.set_ylabel("attention rollout", fontsize=8)
    rollout.set_xlabel("position (bp)", fontsize=8)
    received.set_title(f"{titled(maps.name, region)}: attention each base receives, relative to uniform attention "
                       "(dotted)", fontsize=9)
    if region is not None:
        ticks = [int(tick) for tick in rollout.get_xticks() if 1 <= tick <= len(maps.ids)]
        rollout.set_xticks(ticks)
        rollout.set_xticklabels([f"{tick}\n{genome_position(region, tick - 1)}" for tick in ticks], fontsize=7)
        rollout.set_xlabel(f"position in the sequence (from 1) / on {region.chrom} (BED, 0-based; strand "
                           f"{region.strand})", fontsize=8)
    return figure

