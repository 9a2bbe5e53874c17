"""Zero-shot variant-effect scores from a VCF and a reference genome.

    nucel-score-variants --model runs/demo --vcf variants.vcf.gz --reference genome.fa.gz --output scores.tsv
    python -m nucel.inference.variants ...   (the same command)

Every SNV gets three scores, each the mean of the plus- and minus-strand readings, in a window centred on the
variant ((--window - 1) // 2 bases each side; shifted inward at a sequence's ends, never past them):

- generator_llr: the generator's log p(alt) - log p(ref) with the site masked, over A/C/G/T only
  (negative: the model finds the alternative allele less likely in this context);
- discriminator_site: the discriminator's replaced-token logit at the site with alt in place, minus the same
  with ref (positive: alt looks wrong here), and discriminator_window: that change summed over the window;
- embedding_cosine_distance: 1 - cosine similarity of the ref and alt windows' mean embeddings.

Multi-allelic records are split, one row per ALT. Indels, MNVs, symbolic alleles, non-ACGT alleles and REF
that does not match the reference get a row with empty scores and a `status` saying why; a summary counts
each status. An unknown CHROM stops the run with one line naming it.
"""

import argparse
import csv
import gzip
import math
import os
import shutil
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F


from nucel.inference.inputs import reference_files  # noqa: E402
from nucel.model_folder import (  # noqa: E402
    add_runtime_arguments,
    add_trust_argument,
    check_batch_size,
    load_detector,
    load_head,
    pick_device,
    pick_dtype,
    resolve_folders,
)
from nucel.inference.windows import check_window
from nucel.tokenization.token_layout import TokenLayout
from nucel.tokenization import alphabet  # noqa: E402
from nucel.tokenization.encoding import reverse_complement  # noqa: E402
from nucel.tokenization.reference import ReferenceGenome, compression  # noqa: E402
from nucel.commands import one_line_errors  # noqa: E402
from nucel.outputs import check_distinct, clean_leftovers, commit, temporary_path  # noqa: E402

SCORES = ("generator_llr", "discriminator_site", "discriminator_window", "embedding_cosine_distance")
INFO_FIELDS = {
    "generator_llr": ("NUCEL_LLR", "NucEL generator log p(alt) - log p(ref) at the masked site, mean of both strands"),
    "discriminator_site": ("NUCEL_DISC", "NucEL discriminator replaced-token logit at the site, alt minus ref, "
                                         "mean of both strands"),
    "discriminator_window": ("NUCEL_DISC_WINDOW", "NucEL discriminator logit change summed over the window, alt "
                                                  "minus ref, mean of both strands"),
    "embedding_cosine_distance": ("NUCEL_EMB_DIST", "NucEL cosine distance of ref and alt window embeddings, mean "
                                                    "of both strands"),
}
STATUS_INFO = ("NUCEL_STATUS", "NucEL scoring status of each ALT: ok, or why it was not scored")
# Higher = more disruptive, for AUROC/AUPRC against labels (1 = the variants you expect to matter).
DISRUPTION_SIGN = {"generator_llr": -1.0, "discriminator_site": 1.0, "discriminator_window": 1.0,
                   "embedding_cosine_distance": 1.0}
DEFAULT_WINDOW = None  # 1,024 bases, or what the model reads when that is less
ACGT = "ACGT"


@dataclass
class Allele:
    """One output row: a VCF record's ALT (1-based POS as in the VCF)."""

    chrom: str
    pos: int
    id: str
    ref: str
    alt: str
    status: str
    scores: dict = field(default_factory=dict)

    @property
    def key(self):
        return f"{self.chrom}:{self.pos}:{self.ref}:{self.alt}"


def allele_status(ref, alt, reference_base):
    """'ok' for a scorable SNV, else why not (`reference_base`: the reference's letter at POS, or None outside)."""
    if alt is None or alt in (".", ""):
        return "no_alt"
    if alt.startswith("<") or "[" in alt or "]" in alt or alt == "*" or alt.startswith(".") or alt.endswith("."):
        return "symbolic"
    if len(ref) != len(alt):
        return "indel"
    if len(ref) > 1:
        return "mnv"
    if ref.upper() not in ACGT or alt.upper() not in ACGT:
        return "non_acgt"
    if reference_base is None:
        return "outside_reference"
    if reference_base != ref.upper():
        return "ref_mismatch"
    return "ok"


@dataclass
class Site:
    """A variant position with its window: `ids` of the reference window, `offset` of the site in it."""

    ids: np.ndarray
    offset: int
    ref: int
    alts: list  # token ids, one per scored allele at this site
    alleles: list  # the Allele rows they fill


def site_window(reference, chrom, pos0, window):
    """(ids, offset): the site at 0-based `pos0` with (window - 1) // 2 bases on each side (an odd size, so the
    window of the same variant on the other strand is the mirror image: scores do not depend on which strand the
    reference is written on), shifted inward at the ends, the whole sequence when it is shorter."""
    length = reference.length(chrom)
    flank = (window - 1) // 2
    size = min(2 * flank + 1, length)
    start = min(max(pos0 - flank, 0), length - size)
    return reference.fetch(chrom, start, start + size), pos0 - start


class VariantScorer:
    """Scores SNVs with whichever parts a NucEL export holds: the generator (generator_llr), the discriminator
    with its replaced-token head (discriminator_site, discriminator_window) and its backbone
    (embedding_cosine_distance)."""

    def __init__(self, generator=None, detector=None, backbone=None, window=DEFAULT_WINDOW, batch_size=32,
                 layout=None):
        parts = [p for p in (generator, detector, backbone) if p is not None]
        if not parts:
            raise ValueError("nothing to score with: no generator and no discriminator")
        self.generator, self.detector, self.backbone = generator, detector, backbone
        self.layout = layout or TokenLayout.for_config(parts[0].config)
        self.window = min(check_window(window, part.config, layout=self.layout) for part in parts)
        self.batch_size = check_batch_size(batch_size)
        self.missing = {}
        if generator is None:
            self.missing["generator_llr"] = "no generator export (pass --generator FOLDER)"
        if detector is None:
            reason = ("the discriminator export has no replaced-token head (exported before the head was kept: "
                      "re-export with `training/pretrain.py ... --resume`)" if backbone is not None
                      else "no discriminator export")
            self.missing["discriminator_site"] = self.missing["discriminator_window"] = reason
        if backbone is None:
            self.missing["embedding_cosine_distance"] = "no discriminator export"
        self.available = [score for score in SCORES if score not in self.missing]

    @classmethod
    def from_pretrained(cls, model, generator=None, device="auto", dtype="auto", window=DEFAULT_WINDOW,
                        batch_size=32, trust_remote_code=False):
        """From a NucEL pretraining run folder or export(s); or another model: a stock ModernBERT export or any
        single-nucleotide masked LM (generator_llr) or encoder (embedding_cosine_distance), a folder or a cached
        Hub id, its own code only with `trust_remote_code`."""
        folders = resolve_folders(model, generator)
        device = pick_device(device)
        dtype = pick_dtype(dtype, device)
        generator_model = load_head(folders.generator, "generator", device, dtype,
                                    "--generator" if generator else "--model", "generator_llr", trust_remote_code) \
            if folders.generator else None
        detector, backbone = load_detector(folders.discriminator, device, dtype, trust_remote_code=trust_remote_code) \
            if folders.discriminator else (None, None)
        layouts = {folder: TokenLayout.from_folder(folder, part.config, trust_remote_code) for folder, part in
                   ((folders.generator, generator_model), (folders.discriminator, backbone)) if part is not None}
        layout, *others = layouts.values()
        if any(other != layout for other in others):
            raise ValueError(f"--generator {folders.generator}: its tokenizer's ids differ from those of "
                             f"{folders.discriminator}; score with a generator and discriminator of one vocabulary")
        return cls(generator_model, detector, backbone, window, batch_size, layout)

    @property
    def device(self):
        return next((self.generator or self.backbone).parameters()).device

    def _rows(self, run, pieces):
        """`run` over `pieces` in batches of --batch-size rows; per-row results in order."""
        results = []
        for start in range(0, len(pieces), self.batch_size):
            results += run(pieces[start:start + self.batch_size])
        return results

    @torch.no_grad()
    def _masked_log_probs(self, pieces_and_offsets):
        """log p over A, C, G, T at the masked site of each (ids, offset): (4,) arrays."""
        pieces = []
        for ids, offset in pieces_and_offsets:
            masked = ids.copy()
            masked[offset] = alphabet.MASK_ID  # the layout writes the model's own [MASK] id
            pieces.append(masked)

        def run(batch):
            offsets = [offset for _, offset in batch]
            input_ids, attention_mask = self.layout.batch([piece for piece, _ in batch], self.device)
            logits = self.generator(input_ids=input_ids, attention_mask=attention_mask).logits
            rows = torch.arange(len(batch), device=logits.device)
            site = logits[rows, torch.tensor(offsets, device=logits.device) + 1][:, list(self.layout.nucleotide_ids)]
            return list(F.log_softmax(site.float(), dim=-1).cpu().numpy())

        return self._rows(run, list(zip(pieces, [offset for _, offset in pieces_and_offsets])))

    @torch.no_grad()
    def _detect(self, pieces):
        """(replaced-token logits over the bases or None, mean embedding over the bases) of each window."""
        def run(batch):
            input_ids, attention_mask = self.layout.batch(batch, self.device)
            if self.detector is not None:
                output = self.detector(input_ids=input_ids, attention_mask=attention_mask)
                logits, hidden = output.logits.float().cpu().numpy(), output.last_hidden_state
            else:
                logits, hidden = None, self.backbone(input_ids=input_ids, attention_mask=attention_mask)[0]
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            lengths = torch.tensor([len(piece) for piece in batch], device=input_ids.device)
            bases = (positions >= 1) & (positions <= lengths[:, None])  # not [CLS], [SEP] or padding
            weights = bases.unsqueeze(-1).to(torch.float32)
            means = ((hidden.float() * weights).sum(1) / weights.sum(1)).cpu().numpy()
            return [(None if logits is None else logits[row, 1:len(piece) + 1], means[row])
                    for row, piece in enumerate(batch)]

        return self._rows(run, pieces)

    def score_sites(self, sites):
        """Fill `scores` of every allele of `sites`."""
        strands = []  # (site, strand ids, offset, ref id, alt ids) for plus then minus
        for site in sites:
            strands.append((site, site.ids, site.offset, site.ref, site.alts))
            complement = alphabet.COMPLEMENT_ID
            strands.append((site, reverse_complement(site.ids), len(site.ids) - 1 - site.offset,
                            int(complement[site.ref]), [int(complement[alt]) for alt in site.alts]))
        readings = {id(allele): {score: [] for score in self.available}
                    for site in sites for allele in site.alleles}
        column = {token: i for i, token in enumerate(alphabet.NUCLEOTIDE_IDS)}

        if self.generator is not None:
            log_probs = self._masked_log_probs([(ids, offset) for _, ids, offset, _, _ in strands])
            for (site, _, _, ref, alts), lp in zip(strands, log_probs):
                for allele, alt in zip(site.alleles, alts):
                    readings[id(allele)]["generator_llr"].append(float(lp[column[alt]] - lp[column[ref]]))

        if self.backbone is not None:
            pieces = []
            for _, ids, offset, _, alts in strands:
                pieces.append(ids)
                for alt in alts:
                    changed = ids.copy()
                    changed[offset] = alt
                    pieces.append(changed)
            results = iter(self._detect(pieces))
            for site, _, offset, _, alts in strands:
                ref_logits, ref_mean = next(results)
                for allele in site.alleles:
                    alt_logits, alt_mean = next(results)
                    reading = readings[id(allele)]
                    if ref_logits is not None:
                        reading["discriminator_site"].append(float(alt_logits[offset] - ref_logits[offset]))
                        reading["discriminator_window"].append(float((alt_logits - ref_logits).sum()))
                    cosine = float(ref_mean @ alt_mean / (np.linalg.norm(ref_mean) * np.linalg.norm(alt_mean)))
                    reading["embedding_cosine_distance"].append(1.0 - cosine)

        for site in sites:
            for allele in site.alleles:
                allele.scores = {score: sum(values) / len(values) for score, values in readings[id(allele)].items()}

    def score(self, reference, variants):
        """Python use: `variants` as (chrom, 1-based pos, ref, alt) -> Allele rows with `status` and `scores`."""
        alleles = [Allele(chrom, int(pos), ".", ref, alt, "") for chrom, pos, ref, alt in variants]
        self.score_alleles(reference, alleles)
        return alleles

    def score_alleles(self, reference, alleles):
        """Set `status` (and `scores` where ok) of each allele; alleles at one position share a window."""
        sites = {}
        for allele in alleles:
            length = reference.length(allele.chrom)  # an unknown CHROM is an error naming it
            base = None
            if 1 <= allele.pos <= length:
                base = alphabet.VOCABULARY[int(reference.fetch(allele.chrom, allele.pos - 1, allele.pos)[0])]
            allele.status = allele_status(allele.ref, allele.alt, base)
            if allele.status != "ok":
                continue
            key = (allele.chrom, allele.pos)
            if key not in sites:
                ids, offset = site_window(reference, allele.chrom, allele.pos - 1, self.window)
                sites[key] = Site(ids, offset, alphabet.TOKEN_TO_ID[allele.ref.upper()], [], [])
            sites[key].alts.append(alphabet.TOKEN_TO_ID[allele.alt.upper()])
            sites[key].alleles.append(allele)
        batch = []
        for site in sites.values():
            batch.append(site)
            if len(batch) == self.batch_size:
                self.score_sites(batch)
                batch = []
        if batch:
            self.score_sites(batch)


# ------------------------------------------------------------------------------------------------ VCF in and out
def open_vcf(path):
    """The VCF (plain, bgzip or BCF) as a pysam.VariantFile. A plain-gzip VCF (gzip, not bgzip: common, and
    htslib cannot read it) is read from a decompressed copy in the temporary folder, removed as soon as it is open."""
    import pysam  # noqa: PLC0415

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
    """(record text line, [Allele per ALT]) of every record."""
    import pysam  # noqa: PLC0415

    previous, read = pysam.set_verbosity(0), 0
    try:
        for record in vcf:
            alleles = [Allele(record.chrom, record.pos, record.id or ".", record.ref, alt, "")
                       for alt in (record.alts or (None,))]
            read += 1
            yield str(record), alleles
    except (OSError, ValueError) as failure:
        raise ValueError(f"--vcf {path}: unreadable record after {read} good one(s) ({failure})") from None
    finally:
        pysam.set_verbosity(previous)


def format_score(value):
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.6g}"


def info_value(alleles, score):
    return ",".join(format_score(a.scores.get(score)) or "." for a in alleles)


def annotated_line(line, alleles, scores):
    """The VCF record line with the NucEL INFO fields added (Number=A: one value per ALT, '.' where unscored)."""
    fields = line.rstrip("\n").split("\t")
    added = [f"{INFO_FIELDS[score][0]}={info_value(alleles, score)}" for score in scores]
    added.append(f"{STATUS_INFO[0]}={','.join(a.status for a in alleles)}")
    fields[7] = ";".join(added) if fields[7] in (".", "") else fields[7] + ";" + ";".join(added)
    return "\t".join(fields) + "\n"


def annotated_header(header, scores, reference):
    """The input header with ##INFO lines for the scores and ##contig lines for sequences it does not declare."""
    lines = str(header).splitlines()
    declared = set(header.contigs)
    added = [f'##INFO=<ID={INFO_FIELDS[s][0]},Number=A,Type=Float,Description="{INFO_FIELDS[s][1]}">'
             for s in scores]
    added.append(f'##INFO=<ID={STATUS_INFO[0]},Number=A,Type=String,Description="{STATUS_INFO[1]}">')
    added += [f"##contig=<ID={name},length={reference.length(name)}>" for name in reference.names
              if name not in declared]
    return "\n".join(lines[:-1] + added + lines[-1:]) + "\n"


def check_contig_lengths(header, reference, path):
    """A VCF whose header declares a contig length different from the reference's was called on another build."""
    for name, contig in header.contigs.items():
        if name in reference.names and contig.length is not None and contig.length != reference.length(name):
            raise ValueError(f"--vcf {path}: header declares {name} with length {contig.length:,} but the reference "
                             f"has {reference.length(name):,}: the VCF was called on another genome build")


def read_labels(path):
    """{variant id or CHROM:POS:REF:ALT: 0/1} from a CSV with columns id,label."""
    if not os.path.isfile(path):
        raise ValueError(f"--labels {path}: not found")
    labels = {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"id", "label"} <= set(reader.fieldnames):
            raise ValueError(f"--labels {path}: expected a CSV with columns id,label (got {reader.fieldnames})")
        for number, row in enumerate(reader, start=2):
            if row["label"] not in ("0", "1"):
                raise ValueError(f"--labels {path}:{number}: label must be 0 or 1, got {row['label']!r}")
            labels[row["id"]] = int(row["label"])
    return labels


def evaluate(alleles, labels, scores, log):
    """AUROC / AUPRC of each score (oriented so higher = more disruptive) on the labelled, scored alleles."""
    from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: PLC0415

    matched = [(a, labels[a.id] if a.id in labels else labels[a.key]) for a in alleles
               if a.status == "ok" and (a.id in labels or a.key in labels)]
    classes = {label for _, label in matched}
    if classes != {0, 1}:
        raise ValueError(f"--labels: the scored variants matched {len(matched)} label(s) with classes "
                         f"{sorted(classes)}; AUROC needs both 0 and 1")
    truth = [label for _, label in matched]
    metrics = {}
    log(f"labels: {len(matched)} scored variants labelled ({sum(truth)} positive); higher = more disruptive "
        "(generator_llr is negated)")
    for score in scores:
        values = [DISRUPTION_SIGN[score] * a.scores[score] for a, _ in matched]
        metrics[score] = {"auroc": roc_auc_score(truth, values), "auprc": average_precision_score(truth, values)}
        log(f"  {score:<27} AUROC {metrics[score]['auroc']:.4f}  AUPRC {metrics[score]['auprc']:.4f}")
    return metrics


def score_vcf(scorer, vcf_path, reference_path, output, vcf_out=None, labels=None, quiet=False, log=print,
              records_per_batch=256):
    """Score every ALT of `vcf_path` into the TSV `output` (and the annotated VCF `vcf_out`); returns a summary."""
    from tqdm.auto import tqdm  # noqa: PLC0415

    label_map = read_labels(labels) if labels else None
    for path, option in ((output, "--output"), (vcf_out, "--vcf-out")):
        if path and os.path.isdir(path):
            raise ValueError(f"{option} {path}: is a folder; give a file name")
    for score, reason in scorer.missing.items():
        log(f"note: {score} not computed: {reason}")
    with ReferenceGenome(reference_path) as reference:
        vcf = open_vcf(vcf_path)
        check_contig_lengths(vcf.header, reference, vcf_path)
        finals = [output] + ([vcf_out] if vcf_out else [])
        for path in finals:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            clean_leftovers(path)
        created = [temporary_path(path) for path in finals]
        statuses, alleles_seen, started = Counter(), [], time.perf_counter()
        try:
            table = open(created[0], "w", encoding="utf-8", newline="")
            annotated = None
            if vcf_out:
                import pysam  # noqa: PLC0415

                annotated = pysam.BGZFile(created[1], "wb") if vcf_out.endswith(".gz") else open(created[1], "wb")
                annotated.write(annotated_header(vcf.header, scorer.available, reference).encode())
            with table, tqdm(unit="variant", desc="score", disable=quiet, file=sys.stderr) as progress:
                table.write("\t".join(["CHROM", "POS", "ID", "REF", "ALT", *SCORES, "status"]) + "\n")
                pending = []

                def flush():
                    scorer.score_alleles(reference, [a for _, alleles in pending for a in alleles])
                    for line, alleles in pending:
                        for a in alleles:
                            table.write("\t".join([a.chrom, str(a.pos), a.id, a.ref, a.alt or ".",
                                                   *(format_score(a.scores.get(s)) for s in SCORES), a.status]) + "\n")
                            statuses[a.status] += 1
                        if annotated is not None:
                            annotated.write(annotated_line(line, alleles, scorer.available).encode())
                        progress.update(len(alleles))
                        if label_map is not None:
                            alleles_seen.extend(alleles)

                for line, alleles in vcf_records(vcf, vcf_path):
                    pending.append((line, alleles))
                    if len(pending) == records_per_batch:
                        flush()
                        pending = []
                if pending:
                    flush()
            if annotated is not None:
                annotated.close()
            commit(list(zip(created, finals)))
        finally:
            for path in created:
                if os.path.exists(path):
                    os.remove(path)
    seconds = time.perf_counter() - started
    total = sum(statuses.values())
    summary = {"alleles": total, "statuses": dict(statuses), "seconds": seconds,
               "scored_per_second": statuses["ok"] / seconds if seconds else float("inf"), "output": output}
    log(f"scored {statuses['ok']:,} of {total:,} variant allele(s) in {seconds:.1f} s "
        f"({summary['scored_per_second']:,.1f}/s) -> {output}" + (f" + {vcf_out}" if vcf_out else ""))
    log("status: " + ", ".join(f"{status} {count:,}" for status, count in statuses.most_common()))
    if label_map is not None:
        summary["metrics"] = evaluate(alleles_seen, label_map, scorer.available, log)
    return summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a pretraining run folder (discriminator/ + generator/) or "
                                                        "one NucEL export")
    parser.add_argument("--generator", help="the generator export, when --model is a discriminator folder")
    parser.add_argument("--vcf", required=True, help="variants (.vcf or .vcf.gz)")
    parser.add_argument("--reference", required=True, help="the genome the VCF was called on: FASTA (plain or "
                                                            "bgzip, indexed on first use) or a genome store folder")
    parser.add_argument("--output", required=True, help="TSV: CHROM POS ID REF ALT, one column per score, status")
    parser.add_argument("--vcf-out", help="also write the input VCF with the scores as INFO fields (.vcf or .vcf.gz)")
    parser.add_argument("--labels", help="CSV id,label (1 = expected to matter): print AUROC/AUPRC of each score; "
                                         "id is the VCF ID or CHROM:POS:REF:ALT")
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                        help="bases of context centred on the variant (default 1024, or what the model reads)")
    add_runtime_arguments(parser, batch_size=32)
    add_trust_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    check_distinct({"--output": args.output, "--vcf-out": args.vcf_out}, {
        "--model": args.model, "--generator": args.generator, "--vcf": args.vcf, "--labels": args.labels,
        **{f"--vcf's index ({suffix})": args.vcf + suffix for suffix in (".tbi", ".csi")},
        **reference_files(args.reference)})
    scorer = VariantScorer.from_pretrained(args.model, args.generator, device=args.device, dtype=args.dtype,
                                           window=args.window, batch_size=args.batch_size,
                                           trust_remote_code=args.trust_remote_code)
    return score_vcf(scorer, args.vcf, args.reference, args.output, args.vcf_out, args.labels, args.quiet)


cli = one_line_errors(main)


if __name__ == "__main__":
    cli()
