"""JASPAR motif files: MEME minimal format (JASPAR's `*_meme.txt` exports) and TRANSFAC (JASPAR's `.transfac`).

Read here rather than with Biopython's `Bio.motifs` (checked with Biopython 1.88 on the two shipped files): its
TRANSFAC reader rejects JASPAR 2024's file in strict mode (one space between key and value), and its MEME reader
keeps the matrix id but drops the TF name and turns probabilities into rounded counts. Each format is a short loop.

Taxa (`--taxon`, select_taxon): JASPAR's TRANSFAC export names each motif's taxonomic group in a `CC tax_group:`
line (JASPAR 2024 CORE: vertebrates 879, plants 805, insects 286, fungi 178, nematodes 103, urochordates 94,
diatoms 1), and a taxon keeps the motifs of that group. A MEME file has no taxon field: JASPAR exports one MEME file
per taxon and says which in its name (`JASPAR2020_CORE_vertebrates_non-redundant_pfms_meme.txt`), so a file
without taxa is accepted for a taxon only when its name holds that taxon as a word, and refused otherwise.
"""

import gzip
import os
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from nucel.tokenization.alphabet import BASES

SUM_TOLERANCE = 0.02  # JASPAR's MEME export rounds probabilities to 6 decimals; counts never sum to zero


@dataclass(frozen=True)
class Motif:
    id: str  # the matrix id, e.g. MA0139.1
    name: str  # the factor, e.g. CTCF
    probabilities: np.ndarray  # (width, 4) over A, C, G, T; every row sums to 1
    sites: float  # the binding sites behind the matrix (MEME nsites, TRANSFAC column total)
    taxon: str = None  # JASPAR's taxonomic group (TRANSFAC `CC tax_group:`), lower case; None where not given

    @property
    def width(self):
        return len(self.probabilities)


def read_motifs(path, option="--motifs"):
    """Every motif of a MEME or TRANSFAC file (plain or gzip), in file order."""
    if not os.path.isfile(path):
        raise ValueError(f"{option} {path}: not found")
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(path, "rt", encoding="utf-8") if gzipped else open(path, encoding="utf-8")) as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError, EOFError) as failure:
        raise ValueError(f"{option} {path}: not a readable text file ({failure})") from None
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("MEME version"):
        motifs = parse_meme(lines, path)
    elif first.split()[:1] and first.split()[0] in ("AC", "ID", "NA", "VV", "DE"):
        motifs = parse_transfac(lines, path)
    else:
        raise ValueError(f"{option} {path}: unknown motif file format (starts {first[:40]!r}); expected MEME "
                         "minimal format ('MEME version ...') or TRANSFAC ('AC'/'ID'/'P0' blocks), as JASPAR "
                         "exports them")
    if not motifs:
        raise ValueError(f"{option} {path}: no motifs in the file")
    ids = {}
    for motif in motifs:
        if motif.id in ids:
            raise ValueError(f"{path}: motif id {motif.id} appears twice")
        ids[motif.id] = motif
    return motifs


def _probability_rows(rows, path, lines, motif_id, counts):
    """(probabilities, mean column total) of a matrix read from the 1-based line numbers `lines`, one per row. A
    NaN, infinite or negative entry, a row of counts summing to 0 or a row of probabilities not summing to 1 would
    give NaN or meaningless scores for every sequence scanned: each is one line naming the row."""
    matrix = np.asarray(rows, dtype=np.float64)
    expected = "counts: finite, non-negative numbers" if counts else "letter probabilities: finite, non-negative " \
        "numbers summing to 1"
    totals = matrix.sum(axis=1)
    problems = ((~np.isfinite(matrix).all(axis=1), "a value that is not a finite number"),
                ((matrix < 0).any(axis=1), "a negative entry"),
                (totals <= 0 if counts else np.abs(totals - 1) > SUM_TOLERANCE,
                 "no counts" if counts else "a row that does not sum to 1"))
    for rows_with, what in problems:
        if rows_with.any():
            row = int(np.argmax(rows_with))
            raise ValueError(f"{path}:{lines[row]}: motif {motif_id} has {what} at position {row + 1} "
                             f"({' '.join(f'{v:g}' for v in matrix[row])}); expected {expected}")
    return matrix / totals[:, None], float(totals.mean())


def _numbers(text, path, number, expected):
    try:
        values = [float(field) for field in text.split()]
    except ValueError:
        raise ValueError(f"{path}:{number}: expected {expected} numbers, got {text.strip()[:60]!r}") from None
    if len(values) != expected:
        raise ValueError(f"{path}:{number}: expected {expected} numbers, got {len(values)}")
    return values


def parse_meme(lines, path):
    """MEME minimal format: `MOTIF id [name]`, then `letter-probability matrix: ... w= W nsites= N`, W rows."""
    motifs, index = [], 0
    while index < len(lines):
        line = lines[index].strip()
        index += 1
        if line.startswith("ALPHABET=") and line.split("=", 1)[1].strip() != BASES:
            raise ValueError(f"{path}:{index}: alphabet {line.split('=', 1)[1].strip()!r}; DNA motifs over ACGT "
                             "expected")
        if not line.startswith("MOTIF"):
            continue
        fields, start = line.split(), index
        if len(fields) < 2:
            raise ValueError(f"{path}:{index}: MOTIF without an id")
        motif_id, name = fields[1], fields[2] if len(fields) > 2 else fields[1]
        while index < len(lines) and not lines[index].strip().startswith("letter-probability matrix"):
            if lines[index].startswith("MOTIF"):
                break
            index += 1
        if index == len(lines) or not lines[index].strip().startswith("letter-probability matrix"):
            raise ValueError(f"{path}:{start}: motif {motif_id} has no letter-probability matrix")
        header = lines[index].split(":", 1)[1].replace("= ", "=").split()
        settings = dict(item.split("=", 1) for item in header if "=" in item)
        try:
            width, sites = int(settings["w"]), float(settings.get("nsites", 20))
        except (KeyError, ValueError):
            raise ValueError(f"{path}:{index + 1}: letter-probability matrix line without a width 'w= N'") from None
        if width < 1 or not 0 <= sites < float("inf"):
            raise ValueError(f"{path}:{index + 1}: motif {motif_id} has w= {width} nsites= {sites:g}; expected a "
                             "width of at least 1 and a finite, non-negative number of sites")
        rows = []
        for offset in range(width):
            number = index + 2 + offset
            if number > len(lines):
                raise ValueError(f"{path}:{number}: motif {motif_id} ends after {offset} of its {width} rows")
            rows.append(_numbers(lines[number - 1], path, number, 4))
        probabilities, _ = _probability_rows(rows, path, range(index + 2, index + 2 + width), motif_id,
                                             counts=False)
        motifs.append(Motif(motif_id, name, probabilities, sites))
        index += 1 + width
    return motifs


def parse_transfac(lines, path):
    """TRANSFAC: blocks ended by `//`; AC the id, ID (or NA) the name, a `P0`/`PO` row naming the columns, then
    one `NN a c g t` row of counts per position."""
    motifs, fields, rows, order, start, row_lines = [], {}, [], None, 1, []

    def finish(number):
        if not rows:
            if fields:
                raise ValueError(f"{path}:{start}: motif block without a matrix")
            return
        motif_id = fields.get("AC") or fields.get("ID")
        if not motif_id:
            raise ValueError(f"{path}:{start}: motif block without AC or ID")
        matrix = np.asarray(rows)[:, [order.index(base) for base in range(4)]]
        probabilities, sites = _probability_rows(matrix, path, row_lines, motif_id, counts=True)
        motifs.append(Motif(motif_id, fields.get("NA") or fields.get("ID") or motif_id, probabilities, sites,
                            fields.get("tax_group")))

    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line == "XX":
            continue
        if line.startswith("//"):
            finish(number)
            fields, rows, order, start, row_lines = {}, [], None, number + 1, []
            continue
        key, _, value = line.replace("\t", " ").partition(" ")
        if key in ("P0", "PO"):
            order = value.split()
            if sorted(order) != sorted(BASES):
                raise ValueError(f"{path}:{number}: matrix columns {order}; A, C, G and T expected")
            order = [BASES.index(letter) for letter in order]
        elif order is not None and key.isdigit():
            counts = value.split()
            if len(counts) == 5 and counts[4].isalpha():  # some writers add the consensus letter
                counts = counts[:4]
            rows.append(_numbers(" ".join(counts), path, number, 4))
            row_lines.append(number)
        elif key in ("AC", "ID", "NA") and key not in fields:
            fields[key] = value.strip()
        elif key == "CC" and value.strip().lower().startswith("tax_group:") and "tax_group" not in fields:
            fields["tax_group"] = value.strip()[len("tax_group:"):].strip().lower() or None
    finish(len(lines))
    return motifs


ALL_TAXA = "all"


def select_taxon(motifs, taxon, path, option="--taxon"):
    """The motifs of one JASPAR taxonomic group (`all` or None: every motif). A file whose motifs carry no taxon
    (MEME) passes whole for a taxon its file name holds as a word (JASPAR's per-taxon exports), and is refused
    otherwise; a taxon no motif of the file has is refused with the groups the file does have. Each refusal is one
    line."""
    if taxon is None or taxon.strip().lower() == ALL_TAXA:
        return list(motifs)
    wanted = taxon.strip().lower()
    groups = Counter(motif.taxon for motif in motifs if motif.taxon)
    if not groups:
        name = os.path.basename(path).lower()
        if re.search(rf"(?<![a-z]){re.escape(wanted)}(?![a-z])", name):
            return list(motifs)
        raise ValueError(f"{option} {taxon}: {path} carries no taxon information (a MEME file has no taxon field, "
                         f"and its name does not say '{wanted}'); use --taxon all, or JASPAR's TRANSFAC file, whose "
                         "motifs name their tax_group")
    kept = [motif for motif in motifs if motif.taxon == wanted]
    if not kept:
        found = ", ".join(f"{group} ({count:,})" for group, count in sorted(groups.items()))
        raise ValueError(f"{option} {taxon}: no motif of {path} has JASPAR tax_group '{wanted}'; its groups: "
                         f"{found}, or all")
    return kept
