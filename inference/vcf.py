"""VCF in and out for nucel-score-variants: read every record (plain, bgzip, plain gzip or BCF) as its text line
and one row per ALT, and write the record back with one INFO field per score plus the scoring status
(Number=A: one value per ALT), each declared in the header. Which scores there are, their INFO keys and
descriptions come from the caller (inference/variants.py's SCORES): this module knows VCF, not models.
"""

import gzip
import math
import os
import shutil
import tempfile
import zlib

from nucel.tokenization.reference import compression

STATUS_INFO = ("NUCEL_STATUS", "NucEL scoring status of each ALT: ok, or why it was not scored")


# ------------------------------------------------------------------------------------------------------- reading
def open_vcf(path):
    """The VCF (plain, bgzip or BCF) as a pysam.VariantFile. A plain-gzip VCF (gzip, not bgzip: common, and
    htslib cannot read it) is read from a decompressed copy in the temporary folder, removed as soon as it is open."""
    import pysam  # noqa: PLC0415  (htslib: only VCF input and output need it)

    if not os.path.isfile(path):
        raise ValueError(f"--vcf {path}: not found")
    source = decompressed_copy(path) if compression(path) == "gzip" else path
    previous = pysam.set_verbosity(0)  # htslib warns once per contig a VCF header does not declare
    try:
        return pysam.VariantFile(source)
    except (OSError, ValueError) as failure:
        raise ValueError(f"--vcf {path}: not a readable VCF ({failure})") from None
    finally:
        pysam.set_verbosity(previous)
        if source != path:
            os.remove(source)  # the open file stays readable until closed; nothing is left behind


def decompressed_copy(path):
    """A plain-gzip file decompressed into a new temporary file; its path."""
    handle, copy = tempfile.mkstemp(prefix="nucel-", suffix=".vcf")
    try:
        with os.fdopen(handle, "wb") as out, gzip.open(path, "rb") as compressed:
            shutil.copyfileobj(compressed, out, 1 << 20)
    except (EOFError, zlib.error, gzip.BadGzipFile) as failure:
        os.remove(copy)
        raise ValueError(f"--vcf {path}: a corrupt or truncated gzip file ({failure})") from None
    except OSError as failure:  # the temporary folder is full or unwritable
        os.remove(copy)
        raise ValueError(f"--vcf {path}: plain gzip (not bgzip), and it could not be decompressed into "
                         f"{os.path.dirname(copy)} ({failure}); set TMPDIR, or bgzip the VCF") from None
    return copy


def vcf_records(vcf, path):
    """(record text line, [(CHROM, POS, ID, REF, ALT) per ALT]) of every record: POS 1-based as in the VCF, ID '.'
    when it has none, one row with ALT None for a record without ALT."""
    import pysam  # noqa: PLC0415  (htslib: only VCF input and output need it)

    previous, read = pysam.set_verbosity(0), 0
    try:
        for record in vcf:
            rows = [(record.chrom, record.pos, record.id or ".", record.ref, alt) for alt in (record.alts or (None,))]
            read += 1
            yield str(record), rows
    except (OSError, ValueError) as failure:
        raise ValueError(f"--vcf {path}: unreadable record after {read} good one(s) ({failure})") from None
    finally:
        pysam.set_verbosity(previous)


def count_alleles(path):
    """How many (record, ALT) rows `vcf_records` gives for the VCF at `path`: a progress bar's total (one read of
    the file ahead of the scoring, which takes far longer)."""
    vcf = open_vcf(path)
    try:
        return sum(len(rows) for _, rows in vcf_records(vcf, path))
    finally:
        vcf.close()


def check_contig_lengths(header, reference, path):
    """A VCF whose header declares a contig length different from the reference's was called on another build."""
    for name, contig in header.contigs.items():
        if name in reference.names and contig.length is not None and contig.length != reference.length(name):
            raise ValueError(f"--vcf {path}: header declares {name} with length {contig.length:,} but the reference "
                             f"has {reference.length(name):,}: the VCF was called on another genome build")


# ------------------------------------------------------------------------------------------------------- writing
def format_score(value):
    """A score as text (in the VCF and the TSV alike): 6 significant digits, empty when there is none."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.6g}"


def info_value(alleles, name):
    """The Number=A value of the score `name`: one per ALT, '.' where unscored."""
    return ",".join(format_score(a.scores.get(name)) or "." for a in alleles)


def annotated_line(line, alleles, scores):
    """The VCF record line with the NucEL INFO fields of `scores` (objects with `name` and `info_key`) and the
    status added (Number=A: one value per ALT, '.' where unscored)."""
    fields = line.rstrip("\n").split("\t")
    added = [f"{score.info_key}={info_value(alleles, score.name)}" for score in scores]
    added.append(f"{STATUS_INFO[0]}={','.join(a.status for a in alleles)}")
    fields[7] = ";".join(added) if fields[7] in (".", "") else fields[7] + ";" + ";".join(added)
    return "\t".join(fields) + "\n"


def annotated_header(header, scores, reference):
    """The input header with ##INFO lines for `scores` (objects with `info_key` and `description`) and the status,
    and ##contig lines for sequences it does not declare."""
    lines = str(header).splitlines()
    declared = set(header.contigs)
    added = [f'##INFO=<ID={score.info_key},Number=A,Type=Float,Description="{score.description}">'
             for score in scores]
    added.append(f'##INFO=<ID={STATUS_INFO[0]},Number=A,Type=String,Description="{STATUS_INFO[1]}">')
    added += [f"##contig=<ID={name},length={reference.length(name)}>" for name in reference.names
              if name not in declared]
    return "\n".join(lines[:-1] + added + lines[-1:]) + "\n"


def open_annotated(path, bgzip):
    """A binary file to write the annotated VCF into: BGZF (what htslib and tabix read) when `bgzip`, else plain."""
    import pysam  # noqa: PLC0415  (htslib: only VCF input and output need it)

    return pysam.BGZFile(path, "wb") if bgzip else open(path, "wb")
