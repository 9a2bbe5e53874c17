"""What to embed: FASTA records, BED regions of a reference genome, or sequences given as text.

Each source is read twice: `describe()` (names, lengths, A/C/G/T counts: sizes the output before any model runs
and finds empty or N-only records up front) and iteration (`(name, uint8 ids)`, one record at a time, so a
file is never held whole). BED regions are fetched through an index (tokenization.reference), never by reading
a chromosome into memory.
"""

import os
from dataclasses import dataclass

import numpy as np

from nucel.tokenization import alphabet
from nucel.tokenization.encoding import encode_sequence, reverse_complement
from nucel.tokenization.fasta import EmptyRecord, FastaRecord, scan_fasta
from nucel.tokenization.reference import ReferenceGenome

ACGT_MASK = np.zeros(256, dtype=bool)
ACGT_MASK[list(alphabet.NUCLEOTIDE_IDS)] = True


def acgt_count(ids):
    return int(ACGT_MASK[ids].sum())


@dataclass(frozen=True)
class RecordInfo:
    name: str
    length: int
    acgt: int  # bases that are A, C, G or T (the "real" bases a pooled embedding averages over)
    where: str  # file:line, BED line or argument, for messages
    region: "BedRegion" = None  # the BED region the record is (None for FASTA records and --sequence)


class SequenceTexts:
    """Sequences given on the command line (or a Python list), named seq1, seq2, ... unless names are given."""

    def __init__(self, sequences, names=None):
        self.names = list(names) if names is not None else [f"seq{i + 1}" for i in range(len(sequences))]
        if len(self.names) != len(sequences):
            raise ValueError(f"{len(sequences)} sequences but {len(self.names)} names")
        self.encoded = [encode_sequence(sequence) for sequence in sequences]

    def describe(self):
        return [RecordInfo(name, len(ids), acgt_count(ids), f"--sequence {i + 1}")
                for i, (name, ids) in enumerate(zip(self.names, self.encoded))]

    def __iter__(self):
        yield from zip(self.names, self.encoded)


class FastaRecords:
    """Every record of a FASTA file (.fa, .fa.gz, bgzip), streamed."""

    def __init__(self, path):
        if not os.path.isfile(path):
            raise ValueError(f"--fasta {path}: not found")
        self.path = path

    def _scan(self):
        # empty records: reported by the caller, by name, with what happens (describe() sees their length 0)
        return (item for item in scan_fasta(self.path, encode=True) if not isinstance(item, EmptyRecord))

    def describe(self):
        infos, name, line, length, acgt = [], None, 0, 0, 0
        for item in self._scan():
            if isinstance(item, FastaRecord):
                if name is not None:
                    infos.append(RecordInfo(name, length, acgt, f"{self.path}:{line}"))
                name, line, length, acgt = item.name, item.line, 0, 0
            else:
                ids = np.frombuffer(item, dtype=np.uint8)
                length, acgt = length + len(ids), acgt + acgt_count(ids)
        infos.append(RecordInfo(name, length, acgt, f"{self.path}:{line}"))
        return infos

    def __iter__(self):
        name, chunks = None, []
        for item in self._scan():
            if isinstance(item, FastaRecord):
                if name is not None:
                    yield name, np.frombuffer(b"".join(chunks), dtype=np.uint8)
                name, chunks = item.name, []
            else:
                chunks.append(item)
        yield name, np.frombuffer(b"".join(chunks), dtype=np.uint8)


@dataclass(frozen=True)
class BedRegion:
    chrom: str
    start: int
    end: int
    name: str
    strand: str
    line: int

    def genome_interval(self, start, end):
        """The genome interval (0-based, half-open, as BED) of the bases [start, end) of the region's sequence. For
        strand '-' the sequence is the reverse complement, so its position i is genome position end - 1 - i."""
        if self.strand == "-":
            return self.end - end, self.end - start
        return self.start + start, self.start + end

    def genome_strand(self, strand):
        """The genome strand of something read on `strand` of the region's sequence (flipped for a '-' region)."""
        return {"+": "-", "-": "+"}.get(strand, strand) if self.strand == "-" else strand


def read_bed(path, reference):
    """BED regions (0-based, half-open; columns chrom start end [name [score [strand]]]); header, track and
    comment lines are skipped. A region is named by column 4, else chrom:start-end (1-based closed, as genome
    browsers show it); strand '-' means the region's reverse complement."""
    if not os.path.isfile(path):
        raise ValueError(f"--bed {path}: not found")
    regions, seen = [], {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) < 3:
                raise ValueError(f"{path}:{number}: expected tab-separated chrom, start, end (got {len(fields)} "
                                 "field(s))")
            chrom = fields[0]
            try:
                start, end = int(fields[1]), int(fields[2])
            except ValueError:
                raise ValueError(f"{path}:{number}: start and end must be integers, got {fields[1]!r}, "
                                 f"{fields[2]!r}") from None
            length = reference.length(chrom)
            if not 0 <= start < end <= length:
                raise ValueError(f"{path}:{number}: {chrom}:{start}-{end} is not a region of {chrom} (0-based "
                                 f"half-open, start < end <= {length:,})")
            strand = fields[5] if len(fields) > 5 else "."
            if strand not in ("+", "-", "."):
                raise ValueError(f"{path}:{number}: strand must be +, - or ., got {strand!r}")
            name = fields[3] if len(fields) > 3 and fields[3] not in ("", ".") else f"{chrom}:{start + 1}-{end}"
            if name in seen:
                raise ValueError(f"{path}:{number}: region name '{name}' repeats line {seen[name]}; names identify "
                                 "rows of the output")
            seen[name] = number
            regions.append(BedRegion(chrom, start, end, name, strand, number))
    if not regions:
        raise ValueError(f"--bed {path}: no regions")
    return regions


class BedRegions:
    """BED regions of a reference (FASTA with a faidx index, or a genome store)."""

    def __init__(self, bed_path, reference_path):
        self.reference = ReferenceGenome(reference_path)
        self.path = bed_path
        self.regions = read_bed(bed_path, self.reference)

    def fetch(self, region):
        ids = self.reference.fetch(region.chrom, region.start, region.end)
        return reverse_complement(ids) if region.strand == "-" else ids

    def describe(self):
        return [RecordInfo(region.name, region.end - region.start, acgt_count(self.fetch(region)),
                           f"{self.path}:{region.line}", region) for region in self.regions]

    def __iter__(self):
        for region in self.regions:
            yield region.name, self.fetch(region)


def reference_files(reference):
    """A reference FASTA and the index files read beside it (samtools faidx / bgzip), as inputs to keep."""
    if not reference:
        return {}
    return {"--reference": reference, **{f"--reference's index ({suffix})": reference + suffix
                                         for suffix in (".fai", ".gzi")}}
