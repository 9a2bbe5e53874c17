"""Look inside a NucEL model: in-silico mutagenesis, attention maps and JASPAR motifs, with pictures.

    nucel-interpret --model runs/ft/tata/model --fasta promoters.fa --output-dir runs/interpret/tata \\
        --motifs ../shared/data/motifs/JASPAR2020_CORE_vertebrates_non-redundant_pfms_meme.txt.gz
    nucel-interpret --model runs/demo --head generator --attention --sequence ACGT... --output-dir runs/interpret/g
    nucel-interpret --model runs/demo --bed regions.bed --reference genome.fa.gz --output-dir runs/interpret/d
    nucel-interpret --scan --motifs jaspar.transfac.gz --fasta promoters.fa --output-dir runs/interpret/scan
    python -m nucel.inference.interpret ...   (the same command)

For each sequence (a folder `<output-dir>/<name>/`):
- ISM (inference/interpretation/mutagenesis.py) with the model's head: `ism.npy` (L x 4 effects over A, C, G,
  T), `ism.tsv` (position, reference, the four effects, importance, top-k rank), `ism_heatmap.png`, `ism_logo.png`;
- with --attention: `attention.npy` (layers x heads x (L+2) x (L+2), float16, [CLS] and [SEP] included),
  `attention.tsv` (mean attention received per base, local/global layers, rollout), `attention_grid.png`,
  `attention_profile.png`;
- with --motifs: `motif_matches.tsv` and `motif_matches.png` (the high-importance segments' best JASPAR matches);
- with --scan (no model needed): every site of every motif with p <= --max-p, in `<output-dir>/motif_hits.tsv`
  (and, when a model is given, the significant ones shaded on the ISM logo).
`<output-dir>/report.html` holds every picture and table in one file; `interpret.json` lists what was written.

Significance (inference/interpretation/motif_match.py): a motif match counts only with E-value <= --max-evalue
(default 0.05: the expected number of the file's motifs matching a random segment this well; 0.05 is a family-wise
5% level per segment, over every motif compared). A segment whose best motif misses it is "no significant match"
in the table, the report and the picture, never a best match. Scan hits are listed by --max-p with their E-value
over the whole scan (p x every placement of every motif on both strands); only those with E <= --max-evalue are
shaded and counted as significant. --taxon keeps the motifs of one JASPAR taxonomic group (the TRANSFAC file's
`CC tax_group:`; a MEME file has none and is accepted only for the taxon its file name says, e.g. JASPAR's
`..._CORE_vertebrates_...` file for vertebrates); fewer motifs compared also means smaller E-values.

Coordinates (inference/interpretation/coordinates.py): with --bed every table gains the region's BED line (chrom,
region_start, region_end, region_strand) and the genome interval of each base, segment or site (genome_start,
genome_end; BED-style, 0-based, end excluded; genome_strand for sites), and every title names the region and its
strand. A '-' region is read as its reverse complement: sequence position i (0-based) is genome position
region_end - 1 - i. Sequence coordinates are as without --bed: `position` counts from 1, `start`/`end` of sites
and segments are 0-based, end excluded.
"""

import argparse
import csv
import json
import os
import re
import time

import numpy as np

from nucel import console
from nucel.commands import one_line_errors
from nucel.inference.inputs import BedRegions, FastaRecords, SequenceTexts, reference_files
from nucel.inference.interpretation import plots
from nucel.inference.interpretation.attention import attention_maps
from nucel.inference.interpretation.coordinates import (
    BASE_COLUMNS,
    REGION_COLUMNS,
    base_fields,
    region_fields,
    region_label,
)
from nucel.inference.interpretation.motif_files import ALL_TAXA, read_motifs, select_taxon
from nucel.inference.interpretation.motif_match import (
    MAX_EVALUE,
    describe_match,
    important_segments,
    match_columns,
    match_row,
    match_segments,
)
from nucel.inference.interpretation.mutagenesis import VALUES, SaturationMutagenesis
from nucel.inference.interpretation.pwm import hit_columns, hit_row, scan, scan_tests, score_motifs
from nucel.inference.interpretation.report import write_report
from nucel.inference.windows import check_sequence_length
from nucel.model_folder import (
    HEAD_CLASSES,
    add_runtime_arguments,
    load,
)
from nucel.outputs import check_distinct
from nucel.run_directory import claim_output_directory
from nucel.tokenization.alphabet import BASES
from nucel.tokenization.encoding import decode_bases

HEAD_CHOICES = ("auto", *HEAD_CLASSES, "none")


# ------------------------------------------------------------------------------------------------- inputs
def read_sequences(args, config, layout=None):
    """[(name, ids, output folder, BED region or None)] of --sequence / --fasta / --bed, each checked up front: not
    empty, and (given the model's `config` and token `layout`) not longer than one window."""
    if args.bed and not args.reference:
        raise ValueError("--bed needs --reference (the genome its coordinates refer to)")
    source = SequenceTexts(args.sequence) if args.sequence else FastaRecords(args.fasta) if args.fasta \
        else BedRegions(args.bed, args.reference)
    infos = source.describe()
    folders = {}
    for info in infos:
        if config is not None:
            check_sequence_length(info.name, info.length, config, info.where, layout)
        elif info.length == 0:
            raise ValueError(f"{info.where}: sequence '{info.name}' is empty")
        folder = re.sub(r"[^A-Za-z0-9._-]+", "_", info.name).strip("._") or "sequence"
        if folder in folders:
            raise ValueError(f"{info.where}: sequence '{info.name}' would share the output folder '{folder}' with "
                             f"'{folders[folder]}'; give the records distinct names")
        folders[folder] = info.name
    regions = [info.region for info in infos]
    return [(name, ids, folder, region) for (name, ids), folder, region in zip(source, folders, regions)]


# ------------------------------------------------------------------------------------------------- writing
def write_tsv(path, columns, rows):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def genome_columns(region):
    """What a per-base table adds for a BED region (coordinates.py): its BED line and the base's genome interval."""
    return [*REGION_COLUMNS, *BASE_COLUMNS] if region is not None else []


def genome_cells(region, position):
    return [*region_fields(region), *base_fields(region, position)] if region is not None else []


ISM_COLUMNS = ["position", "reference", *BASES, "importance", "top_rank"]


def ism_rows(result, top_k, region=None):
    """ism.tsv: position (from 1), reference base, the four effects, importance, top-k rank; for a BED region also
    the region and the base's genome interval (genome_columns)."""
    rank = {int(position): i for i, position in enumerate(result.top_positions(top_k), start=1)}
    sequence, importance = result.sequence, result.importance
    return [[position + 1, sequence[position], *(f"{value:.6g}" for value in result.effects[position]),
             f"{importance[position]:.6g}", rank.get(position, ""), *genome_cells(region, position)]
            for position in range(len(sequence))]


def attention_rows(maps, region=None):
    by_type = maps.received_by_type()
    columns = ["position", "base", "received", *(f"received_{kind}" for kind in by_type), "rollout",
               *genome_columns(region)]
    values = [maps.received(), *by_type.values(), maps.rollout()]
    sequence = decode_bases(maps.ids)
    return columns, [[i + 1, sequence[i], *(f"{v[i]:.6g}" for v in values), *genome_cells(region, i)]
                     for i in range(len(sequence))]


class Interpretation:
    """One run of nucel-interpret: the models, the motifs, and what each sequence gets."""

    def __init__(self, args):
        self.args = args
        self.motifs = select_taxon(read_motifs(args.motifs), args.taxon, args.motifs) if args.motifs else None
        self.ism = self.encoder = None
        self.folder, self.head = None, None
        if args.model:
            loaded = load(args.model, ("head",), args.device, args.dtype, head=args.head)
            model, self.folder, self.head, self.layout = (loaded["head"], loaded.folders.discriminator, loaded.head,
                                                          loaded.layout)
            if self.head != "none":
                self.ism = SaturationMutagenesis(model, self.head, args.target, args.value, args.batch_size,
                                                 args.reverse_complement_average, self.layout)
            self.encoder = getattr(model, "model", model) if args.attention else None
            self.config = model.config
        else:
            self.config = self.layout = None

    def run(self, sequences, output_dir, log=print, progress=None):
        """Every sequence's files and report sections; one line (and its findings) per sequence through `log`, one
        step of `progress` (a bar) per sequence."""
        sections, files, all_hits = [], {}, []
        regions = any(region is not None for *_, region in sequences)
        max_e = self.args.max_evalue
        for name, ids, folder, region in sequences:
            started = time.perf_counter()
            directory = os.path.join(output_dir, folder)
            os.makedirs(directory, exist_ok=True)
            items, written, lines = [], files.setdefault(name, {}), []
            if region is not None:
                items.append(("text", f"{name} is {region_label(region)}"
                                      + (": read as its reverse complement, so sequence position i (0-based) is "
                                         f"genome position {region.end} - 1 - i" if region.strand == "-" else
                                         f": sequence position i (0-based) is genome position {region.start} + i")
                                      + "; genome_start/genome_end in the tables are BED-style (0-based, end "
                                        "excluded)."))
            # Scan and segment matching read the same motifs against this sequence's background: score them once.
            scored = score_motifs(self.motifs, ids) if self.motifs is not None else None
            hits = scan(name, ids, self.motifs, self.args.max_p, scored) if self.args.scan else []
            significant = [hit for hit in hits if hit.e_value <= max_e]
            all_hits += [(hit, region) for hit in hits]
            if self.ism is not None:
                items += self._mutagenesis(name, ids, directory, written, significant, scored, region, lines)
            if self.encoder is not None:
                items += self._attention(name, ids, directory, written, region)
            if self.args.scan:
                lines.append(f"scan: {len(hits)} site(s) with p <= {self.args.max_p:g}, {len(significant)} "
                             f"significant (E <= {max_e:g})")
                items.append(("text", f"{len(hits)} JASPAR site(s) with p <= {self.args.max_p:g} (motif_hits.tsv); "
                                      f"{len(significant)} significant: E <= {max_e:g}, E = p x "
                                      f"{scan_tests(len(ids), self.motifs):,} sites tested."))
                items.append(("table", hit_columns(regions), [hit_row(hit, region) for hit in
                                                             sorted(hits, key=lambda h: h.p_value)]))
            heading = f"{name} ({len(ids):,} bp)" + (f", {region_label(region)}" if region is not None else "")
            sections.append((heading, items))
            log(f"{name}: {len(ids):,} bp in {time.perf_counter() - started:.1f} s -> {directory}")
            for line in lines:
                log(f"  {line}")
            if progress is not None:
                progress.update(1)
        if self.args.scan:
            files["motif_hits.tsv"] = write_tsv(os.path.join(output_dir, "motif_hits.tsv"), hit_columns(regions),
                                                [hit_row(hit, region) for hit, region in all_hits])
        return sections, files

    def _mutagenesis(self, name, ids, directory, written, hits, scored, region=None, lines=None):
        """ISM files, pictures and report items; `hits`: the significant scan sites to shade on the logo; `lines`
        collects what the console shows."""
        top_k, max_e = self.args.top_k, self.args.max_evalue
        result = self.ism(name, ids)
        written["ism.npy"] = os.path.join(directory, "ism.npy")
        np.save(written["ism.npy"], result.effects)
        written["ism.tsv"] = write_tsv(os.path.join(directory, "ism.tsv"), ISM_COLUMNS + genome_columns(region),
                                       ism_rows(result, top_k, region))
        written["ism_heatmap.png"] = plots.save(plots.ism_heatmap(result, top_k, region),
                                                os.path.join(directory, "ism_heatmap.png"))
        shown = sorted(hits, key=lambda hit: hit.p_value)[:6]
        written["ism_logo.png"] = plots.save(plots.ism_logo(result, top_k, shown, region),
                                             os.path.join(directory, "ism_logo.png"))
        top = [[rank, int(p) + 1, result.sequence[p], f"{result.importance[p]:.4g}", *genome_cells(region, int(p))]
               for rank, p in enumerate(result.top_positions(top_k), start=1)]
        items = [("text", f"In-silico mutagenesis with the {result.kind}: {result.measure}; importance = minus the "
                          "mean effect of the three other bases."),
                 ("image", written["ism_heatmap.png"], "effect of every base at every position"),
                 ("image", written["ism_logo.png"], "reference bases scaled by importance"
                  + (f"; shaded: scan sites with E <= {max_e:g}" if self.args.scan else "")),
                 ("table", ["rank", "position", "base", "importance", *genome_columns(region)], top)]
        if self.motifs is not None:
            segments = important_segments(result.importance, self.args.segments)
            matches = match_segments(name, ids, segments, self.motifs, self.args.matches, scored, max_e)
            columns = match_columns(region is not None)
            rows = [match_row(match, name, region) for match in matches]
            written["motif_matches.tsv"] = write_tsv(os.path.join(directory, "motif_matches.tsv"), columns, rows)
            by_id = {motif.id: motif for motif in self.motifs}
            written["motif_matches.png"] = plots.save(plots.motif_matches(result, matches, by_id, region, max_e),
                                                      os.path.join(directory, "motif_matches.png"))
            found = sum(1 for match in matches if match.significant and match.rank == 1)
            summary = (f"{found} of {len(segments)} high-importance segment(s) match a motif with E <= {max_e:g} "
                       f"({len(self.motifs):,} motifs compared); the others: \"no significant match\".")
            items += [("text", summary),
                      ("image", written["motif_matches.png"], "best significant JASPAR match of each high-importance "
                                                              "segment"),
                      ("table", columns, rows)]
            if lines is not None:
                lines += [describe_match(match, max_e, region) for match in matches]
        return items

    def _attention(self, name, ids, directory, written, region=None):
        maps = attention_maps(self.encoder, name, ids, self.layout)
        written["attention.npy"] = os.path.join(directory, "attention.npy")
        np.save(written["attention.npy"], maps.maps.astype(np.float16))
        columns, rows = attention_rows(maps, region)
        written["attention.tsv"] = write_tsv(os.path.join(directory, "attention.tsv"), columns, rows)
        written["attention_grid.png"] = plots.save(plots.attention_grid(maps, region),
                                                   os.path.join(directory, "attention_grid.png"), dpi=90)
        written["attention_profile.png"] = plots.save(plots.attention_profile(maps, region),
                                                      os.path.join(directory, "attention_profile.png"))
        return [("image", written["attention_grid.png"], "attention of every layer and head"),
                ("image", written["attention_profile.png"], "attention received per base, and rollout")]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a fine-tuned classifier (finetune's model/), a generator or discriminator "
                                        "export, or a pretraining run folder (its discriminator/)")
    parser.add_argument("--head", choices=HEAD_CHOICES, default="auto",
                        help="what ISM asks: auto (the folder's own head), classifier, generator, discriminator, "
                             "or none (attention maps only)")
    parser.add_argument("--target", help="classifier: the class whose score ISM follows (name or index; default "
                                         "the last, the positive class of two)")
    parser.add_argument("--value", choices=VALUES, default="logit",
                        help="classifier: follow the class log-odds (default) or its probability")
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--sequence", nargs="+", help="one or more sequences (named seq1, seq2, ...)")
    inputs.add_argument("--fasta", help="FASTA (.fa, .fa.gz): every record is interpreted")
    inputs.add_argument("--bed", help="BED regions of --reference (strand '-': the reverse complement); every "
                                      "table and title then gives the region and genome coordinates (BED-style: "
                                      "0-based, end excluded)")
    parser.add_argument("--reference", help="with --bed: FASTA (bgzip or plain, indexed on first use) or a genome "
                                            "store folder")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--top-k", type=int, default=10, help="positions numbered on the logo and listed")
    parser.add_argument("--reverse-complement-average", action="store_true",
                        help="ISM of both strands, aligned base by base and averaged")
    parser.add_argument("--attention", action="store_true", help="also attention maps (every layer and head)")
    parser.add_argument("--motifs", help="JASPAR motifs (MEME or TRANSFAC, plain or .gz): match the important "
                                         "segments, and with --scan scan the sequences")
    parser.add_argument("--segments", type=int, default=3, help="high-importance segments matched per sequence")
    parser.add_argument("--matches", type=int, default=3, help="best significant motifs reported per segment")
    parser.add_argument("--max-evalue", type=float, default=MAX_EVALUE,
                        help="a motif match (and a scan site) is significant at E-value <= this (default "
                             f"{MAX_EVALUE:g}: at most a 5%% chance per segment that any motif of the file matches "
                             "random DNA this well); segments without one read \"no significant match\"")
    parser.add_argument("--taxon", default=ALL_TAXA,
                        help="only the motifs of this JASPAR taxonomic group (the TRANSFAC file's 'CC tax_group:'): "
                             "vertebrates, plants, fungi, insects, nematodes, urochordates, ... or all (default). A "
                             "MEME file names no taxa: it is accepted only for the taxon its file name says "
                             "(JASPAR's ..._CORE_vertebrates_... file: vertebrates)")
    parser.add_argument("--scan", action="store_true", help="scan the sequences for every motif (--max-p)")
    parser.add_argument("--max-p", type=float, default=1e-4, help="--scan: report sites with p-value <= this")
    parser.add_argument("--no-report", action="store_true", help="skip report.html")
    add_runtime_arguments(parser, batch_size=64)
    args = parser.parse_args(argv)
    if args.model is None and not args.scan:
        parser.error("--model is required (only --scan runs without a model)")
    if args.scan and not args.motifs:
        raise ValueError("--scan needs --motifs FILE (JASPAR MEME or TRANSFAC)")
    if args.attention and not args.model:
        raise ValueError("--attention needs --model")
    if args.motifs and args.head == "none" and not args.scan:
        raise ValueError("--motifs with --head none: motifs are matched to ISM importance (give a head) or scanned "
                         "(add --scan)")
    if args.head == "none" and not args.attention and not args.scan:
        raise ValueError("--head none leaves nothing to do: add --attention (or --scan)")
    for option in ("top_k", "segments", "matches", "batch_size"):
        if getattr(args, option) < 1:
            raise ValueError(f"--{option.replace('_', '-')} {getattr(args, option)}: must be at least 1")
    if not 0 < args.max_p <= 1:
        raise ValueError(f"--max-p {args.max_p}: a p-value in (0, 1] expected")
    if not 0 < args.max_evalue < float("inf"):
        raise ValueError(f"--max-evalue {args.max_evalue}: a positive E-value expected (default {MAX_EVALUE:g})")
    if args.taxon.strip().lower() != ALL_TAXA and not args.motifs:
        raise ValueError(f"--taxon {args.taxon}: selects --motifs; give --motifs FILE")
    return args


def main(argv=None):
    args = parse_args(argv)
    console.apply_output_options(args)
    check_distinct({"--output-dir": args.output_dir}, {
        "--model": args.model if args.model and os.path.isdir(args.model) else None, "--fasta": args.fasta,
        "--bed": args.bed, "--motifs": args.motifs, **reference_files(args.reference)})
    interpretation = Interpretation(args)  # models and motifs are checked before any output is written
    sequences = read_sequences(args, interpretation.config, interpretation.layout)
    with claim_output_directory(args.output_dir, "interpret"):
        with console.progress(len(sequences), unit="seq", desc="interpret") as bar:  # sequences/s (or s/seq)
            sections, files = interpretation.run(sequences, args.output_dir, progress=bar)
        summary = {"model": args.model, "folder": interpretation.folder, "head": interpretation.head,
                   "measure": interpretation.ism.measure if interpretation.ism else None,
                   "motifs": args.motifs, "taxon": args.taxon,
                   "motifs_compared": len(interpretation.motifs) if interpretation.motifs is not None else None,
                   "max_evalue": args.max_evalue, "sequences": [name for name, *_ in sequences], "files": files}
        if not args.no_report:
            motifs = "(none)" if not args.motifs else (
                f"{args.motifs} (taxon {args.taxon}: {len(interpretation.motifs):,} motifs); a match or site is "
                f"significant at E <= {args.max_evalue:g}")
            lines = [f"model: {args.model or '(none: motif scan only)'}; head: {interpretation.head}",
                     f"motifs: {motifs}"]
            summary["report"] = write_report(os.path.join(args.output_dir, "report.html"),
                                             "NucEL interpretation", lines, sections)
        with open(os.path.join(args.output_dir, "interpret.json"), "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=1)
    print(f"wrote {args.output_dir}/" + ("report.html, " if not args.no_report else "") + "interpret.json")
    return summary


cli = one_line_errors(main)


if __name__ == "__main__":
    cli()
