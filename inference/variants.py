"""Zero-shot variant-effect scores from a VCF and a reference genome.

    nucel-score-variants --model runs/demo --vcf variants.vcf.gz --reference genome.fa.gz --output scores.tsv
    python -m nucel.inference.variants ...   (the same command)

Every SNV gets each score the model's parts allow, each the mean of the plus- and minus-strand readings, in a
window centred on the variant ((--window - 1) // 2 bases each side; shifted inward at a sequence's ends, never
past them). A score is one class in the table SCORES: its TSV column, VCF INFO key and description, which sign is
disruptive, the model part it reads and how it is computed from that part's outputs at the site. The TSV columns,
the VCF INFO fields, the AUROC orientation and the list at the end of --help all read that table; a fifth score
is one more class there.

Multi-allelic records are split, one row per ALT. Indels, MNVs, symbolic alleles, non-ACGT alleles and REF
that does not match the reference get a row with empty scores and a `status` saying why; a summary counts
each status. An unknown CHROM stops the run with one line naming it. Reading and writing VCF: inference/vcf.py.
"""

import argparse
import csv
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nucel import console
from nucel.commands import one_line_errors
from nucel.inference.inputs import reference_files
from nucel.inference.vcf import (
    STATUS_INFO,
    annotated_header,
    annotated_line,
    check_contig_lengths,
    count_alleles,
    format_score,
    open_annotated,
    open_vcf,
    vcf_records,
)
from nucel.inference.windows import check_window
from nucel.model_folder import (
    add_runtime_arguments,
    add_trust_argument,
    check_batch_size,
    load,
)
from nucel.outputs import check_distinct, clean_leftovers, commit, temporary_path
from nucel.tokenization import alphabet
from nucel.tokenization.encoding import reverse_complement
from nucel.tokenization.reference import ReferenceGenome
from nucel.tokenization.token_layout import TokenLayout

DEFAULT_WINDOW = None  # 1,024 bases, or what the model reads when that is less
ACGT = "ACGT"
COLUMN = {token: i for i, token in enumerate(alphabet.NUCLEOTIDE_IDS)}  # a base's token id -> its log-prob column


# ---------------------------------------------------------------------------------------------------- the scores
@dataclass
class Reading:
    """What the model's parts said about one allele on one strand: what every score's `compute` reads. A part the
    scorer does not have leaves its fields None (the scores that read them are then not computed)."""

    offset: int  # the site in the window
    ref: int  # token ids of the reference and the alternative base, on this strand
    alt: int
    log_probs: np.ndarray | None = None  # generator: log p over A, C, G, T at the masked site, (4,)
    ref_logits: np.ndarray | None = None  # discriminator: replaced-token logits over the window's bases with ref,
    alt_logits: np.ndarray | None = None  # and with alt in place
    ref_embedding: np.ndarray | None = None  # discriminator's encoder: mean embedding of the window with ref,
    alt_embedding: np.ndarray | None = None  # and with alt in place


class VariantScore:
    """One score of an SNV: `name` (its TSV column), `info_key` and `description` (its VCF INFO field),
    `disruption_sign` (times the score gives higher = more disruptive, for AUROC/AUPRC against labels), `part`
    (the model part it reads: generator, detector = the discriminator with its replaced-token head, backbone = the
    discriminator's encoder) and `compute`, one strand's reading -> the score on that strand."""

    name: str
    info_key: str
    description: str
    disruption_sign: float
    part: str

    def compute(self, reading: Reading) -> float:
        raise NotImplementedError


class GeneratorLLR(VariantScore):
    """The generator's log p(alt) - log p(ref) with the site masked, over A/C/G/T only (negative: the model finds
    the alternative allele less likely in this context)."""

    name = "generator_llr"
    info_key = "NUCEL_LLR"
    description = "NucEL generator log p(alt) - log p(ref) at the masked site, mean of both strands"
    disruption_sign = -1.0
    part = "generator"

    def compute(self, reading: Reading) -> float:
        return float(reading.log_probs[COLUMN[reading.alt]] - reading.log_probs[COLUMN[reading.ref]])


class DiscriminatorSite(VariantScore):
    """The discriminator's replaced-token logit at the site with alt in place, minus the same with ref (positive:
    alt looks wrong here)."""

    name = "discriminator_site"
    info_key = "NUCEL_DISC"
    description = "NucEL discriminator replaced-token logit at the site, alt minus ref, mean of both strands"
    disruption_sign = 1.0
    part = "detector"

    def compute(self, reading: Reading) -> float:
        return float(reading.alt_logits[reading.offset] - reading.ref_logits[reading.offset])


class DiscriminatorWindow(VariantScore):
    """That change of the replaced-token logits summed over the whole window (positive: alt makes the window look
    edited)."""

    name = "discriminator_window"
    info_key = "NUCEL_DISC_WINDOW"
    description = "NucEL discriminator logit change summed over the window, alt minus ref, mean of both strands"
    disruption_sign = 1.0
    part = "detector"

    def compute(self, reading: Reading) -> float:
        return float((reading.alt_logits - reading.ref_logits).sum())


class EmbeddingCosineDistance(VariantScore):
    """1 - cosine similarity of the ref and alt windows' mean embeddings (large: alt changes what the encoder
    makes of the window)."""

    name = "embedding_cosine_distance"
    info_key = "NUCEL_EMB_DIST"
    description = "NucEL cosine distance of ref and alt window embeddings, mean of both strands"
    disruption_sign = 1.0
    part = "backbone"

    def compute(self, reading: Reading) -> float:
        ref, alt = reading.ref_embedding, reading.alt_embedding
        return 1.0 - float(ref @ alt / (np.linalg.norm(ref) * np.linalg.norm(alt)))


# In this order: the TSV's columns, the VCF's INFO fields, the AUROC lines.
SCORES = {score.name: score for score in (GeneratorLLR(), DiscriminatorSite(), DiscriminatorWindow(),
                                          EmbeddingCosineDistance())}


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
    (embedding_cosine_distance). `available`: the names of the scores of SCORES whose part it has, in table order;
    `missing`: {name: why not} for the others."""

    def __init__(self, generator: nn.Module | None = None, detector: nn.Module | None = None,
                 backbone: nn.Module | None = None, window: int | None = DEFAULT_WINDOW, batch_size: int = 32,
                 layout: TokenLayout | None = None) -> None:
        given = {"generator": generator, "detector": detector, "backbone": backbone}
        parts = [p for p in given.values() if p is not None]
        if not parts:
            raise ValueError("nothing to score with: no generator and no discriminator")
        self.generator, self.detector, self.backbone = generator, detector, backbone
        self.layout = layout or TokenLayout.for_config(parts[0].config)
        self.window = min(check_window(window, part.config, layout=self.layout) for part in parts)
        self.batch_size = check_batch_size(batch_size)
        absent = {
            "generator": "no generator export (pass --generator FOLDER)",
            "detector": ("the discriminator export has no replaced-token head (exported before the head was kept: "
                         "re-export with `training/pretrain.py ... --resume`)" if backbone is not None
                         else "no discriminator export"),
            "backbone": "no discriminator export",
        }
        # {score name: why not} for the scores whose part is missing; `available`: the others, in SCORES order
        self.missing = {name: absent[score.part] for name, score in SCORES.items() if given[score.part] is None}
        self.available = [name for name in SCORES if name not in self.missing]

    @classmethod
    def from_pretrained(cls, model: str, generator: str | None = None, device: str = "auto", dtype: str = "auto",
                        window: int | None = DEFAULT_WINDOW, batch_size: int = 32,
                        trust_remote_code: bool = False) -> "VariantScorer":
        """From a NucEL pretraining run folder or export(s); or another model: a stock ModernBERT export or any
        single-nucleotide masked LM (generator_llr) or encoder (embedding_cosine_distance), a folder or a cached
        Hub id, its own code only with `trust_remote_code`."""
        loaded = load(model, ("generator", "detector"), device, dtype, generator=generator,
                      trust_remote_code=trust_remote_code, needs={"generator": "generator_llr"})
        return cls(loaded["generator"], loaded["detector"], loaded["encoder"], window, batch_size, loaded.layout)

    @property
    def device(self) -> torch.device:
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

    def _readings(self, sites):
        """{id(allele): [Reading on the plus strand, Reading on the minus strand]} of every allele of `sites`, from
        whichever parts the scorer has."""
        strands = []  # (site, strand ids, offset, ref id, alt ids) for plus then minus
        for site in sites:
            strands.append((site, site.ids, site.offset, site.ref, site.alts))
            complement = alphabet.COMPLEMENT_ID
            strands.append((site, reverse_complement(site.ids), len(site.ids) - 1 - site.offset,
                            int(complement[site.ref]), [int(complement[alt]) for alt in site.alts]))
        per_strand = [[Reading(offset, ref, alt) for alt in alts] for _, _, offset, ref, alts in strands]

        if self.generator is not None:
            log_probs = self._masked_log_probs([(ids, offset) for _, ids, offset, _, _ in strands])
            for readings, lp in zip(per_strand, log_probs):
                for reading in readings:
                    reading.log_probs = lp

        if self.backbone is not None:
            pieces = []
            for _, ids, offset, _, alts in strands:
                pieces.append(ids)
                for alt in alts:
                    changed = ids.copy()
                    changed[offset] = alt
                    pieces.append(changed)
            results = iter(self._detect(pieces))
            for readings in per_strand:
                ref_logits, ref_mean = next(results)
                for reading in readings:
                    reading.alt_logits, reading.alt_embedding = next(results)
                    reading.ref_logits, reading.ref_embedding = ref_logits, ref_mean

        by_allele = {}
        for (site, *_), readings in zip(strands, per_strand):
            for allele, reading in zip(site.alleles, readings):
                by_allele.setdefault(id(allele), []).append(reading)
        return by_allele

    def score_sites(self, sites: list[Site]) -> None:
        """Fill `scores` of every allele of `sites`: each available score of SCORES, the mean of its two strands."""
        readings = self._readings(sites)
        scores = [SCORES[name] for name in self.available]
        for site in sites:
            for allele in site.alleles:
                strands = readings[id(allele)]
                allele.scores = {score.name: sum([score.compute(reading) for reading in strands]) / len(strands)
                                 for score in scores}

    def score(self, reference: ReferenceGenome, variants: Iterable[tuple[str, int, str, str]]) -> list[Allele]:
        """Python use: `variants` as (chrom, 1-based pos, ref, alt) -> Allele rows with `status` and `scores`."""
        alleles = [Allele(chrom, int(pos), ".", ref, alt, "") for chrom, pos, ref, alt in variants]
        self.score_alleles(reference, alleles)
        return alleles

    def score_alleles(self, reference: ReferenceGenome, alleles: list[Allele]) -> None:
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


# ------------------------------------------------------------------------------------------- labels, the command
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
    """AUROC / AUPRC of each of `scores` (names in SCORES, each times its disruption_sign so that higher = more
    disruptive) on the labelled, scored alleles."""
    from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: PLC0415  (heavy: only --labels needs it)

    matched = [(a, labels[a.id] if a.id in labels else labels[a.key]) for a in alleles
               if a.status == "ok" and (a.id in labels or a.key in labels)]
    classes = {label for _, label in matched}
    if classes != {0, 1}:
        raise ValueError(f"--labels: the scored variants matched {len(matched)} label(s) with classes "
                         f"{sorted(classes)}; AUROC needs both 0 and 1")
    truth = [label for _, label in matched]
    metrics = {}
    negated = [name for name, score in SCORES.items() if score.disruption_sign < 0]
    log(f"labels: {len(matched)} scored variants labelled ({sum(truth)} positive); higher = more disruptive"
        + (f" ({', '.join(negated)} {'is' if len(negated) == 1 else 'are'} negated)" if negated else ""))
    for score in scores:
        values = [SCORES[score].disruption_sign * a.scores[score] for a, _ in matched]
        metrics[score] = {"auroc": roc_auc_score(truth, values), "auprc": average_precision_score(truth, values)}
        log(f"  {score:<27} AUROC {metrics[score]['auroc']:.4f}  AUPRC {metrics[score]['auprc']:.4f}")
    return metrics


def score_vcf(scorer, vcf_path, reference_path, output, vcf_out=None, labels=None, quiet=False, log=print,
              records_per_batch=256):
    """Score every ALT of `vcf_path` into the TSV `output` (and the annotated VCF `vcf_out`); returns a summary."""
    label_map = read_labels(labels) if labels else None
    for path, option in ((output, "--output"), (vcf_out, "--vcf-out")):
        if path and os.path.isdir(path):
            raise ValueError(f"{option} {path}: is a folder; give a file name")
    for score, reason in scorer.missing.items():
        log(f"note: {score} not computed: {reason}")
    scores = [SCORES[name] for name in scorer.available]  # the INFO fields
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
                annotated = open_annotated(created[1], bgzip=vcf_out.endswith(".gz"))
                annotated.write(annotated_header(vcf.header, scores, reference).encode())
            total = count_alleles(vcf_path) if console.output_settings().bars() and not quiet else None
            with table, console.progress(total, unit="variant", desc="score", enabled=not quiet) as progress:
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
                            annotated.write(annotated_line(line, alleles, scores).encode())
                        progress.update(len(alleles))
                        if label_map is not None:
                            alleles_seen.extend(alleles)

                for line, rows in vcf_records(vcf, vcf_path):
                    pending.append((line, [Allele(*row, "") for row in rows]))
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


def scores_help():
    """The list of scores at the end of --help, from SCORES."""
    lines = [f"  {name:<27} {score.info_key:<18} {'lower' if score.disruption_sign < 0 else 'higher'} = more "
             f"disruptive\n  {'':<27} {score.description}" for name, score in SCORES.items()]
    return "scores (TSV column, VCF INFO key, which way is disruptive; what):\n" + "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, epilog=scores_help(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a pretraining run folder (discriminator/ + generator/) or "
                                                        "one NucEL export")
    parser.add_argument("--generator", help="the generator export, when --model is a discriminator folder")
    parser.add_argument("--vcf", required=True, help="variants (.vcf or .vcf.gz)")
    parser.add_argument("--reference", required=True, help="the genome the VCF was called on: FASTA (plain or "
                                                            "bgzip, indexed on first use) or a genome store folder")
    parser.add_argument("--output", required=True,
                        help=f"TSV: CHROM POS ID REF ALT, one column per score ({' '.join(SCORES)}), status")
    parser.add_argument("--vcf-out", help="also write the input VCF with the scores as INFO fields ("
                                          + ", ".join(score.info_key for score in SCORES.values())
                                          + f", {STATUS_INFO[0]}; .vcf or .vcf.gz)")
    parser.add_argument("--labels", help="CSV id,label (1 = expected to matter): print AUROC/AUPRC of each score; "
                                         "id is the VCF ID or CHROM:POS:REF:ALT")
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                        help="bases of context centred on the variant (default 1024, or what the model reads)")
    add_runtime_arguments(parser, batch_size=32)
    add_trust_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    console.apply_output_options(args)
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
