"""Genome coordinates for sequences that are BED regions of a reference (`nucel-interpret --bed`).

One convention everywhere: genome coordinates are BED's, 0-based with the end excluded. A region's columns are
its BED line (`chrom`, `region_start`, `region_end`, `region_strand`); a base's or a site's place on the genome is
the interval `genome_start`-`genome_end` (a single base: genome_end = genome_start + 1), so any row pastes into a
BED file. A region on strand '-' is read as its reverse complement: its sequence position i (0-based) is genome
position region_end - 1 - i, and a site on strand s of the sequence lies on the other strand of the genome
(`genome_strand`). Strand '.' is read as '+'. Sequence coordinates keep their own columns, as before (`position`
in ism.tsv and attention.tsv counts from 1; `start`/`end` of sites and segments are 0-based, end excluded).
"""

REGION_COLUMNS = ("chrom", "region_start", "region_end", "region_strand")
BASE_COLUMNS = ("genome_start", "genome_end")  # the base's own 1-bp interval


def region_fields(region):
    """The region's BED line as table cells (chrom, start, end, strand)."""
    return [region.chrom, str(region.start), str(region.end), region.strand]


def base_fields(region, position):
    """The genome interval of the sequence's base `position` (0-based), as table cells."""
    return [str(value) for value in region.genome_interval(position, position + 1)]


def interval_fields(region, start, end):
    return [str(value) for value in region.genome_interval(start, end)]


def region_label(region):
    """A region for titles and headings: chrom:start-end (strand), BED 0-based."""
    return f"{region.chrom}:{region.start}-{region.end} ({region.strand}; BED, 0-based)"


def titled(name, region):
    """A sequence's name for titles: with its genome region when it is one."""
    return f"{name} [{region_label(region)}]" if region is not None else name


def genome_position(region, position):
    """The genome coordinate (0-based) of the sequence's base `position` (0-based)."""
    return region.genome_interval(position, position + 1)[0]
