"""inference/variants.py (nucel-score-variants) and inference/vcf.py. The oracle: a tiny ELECTRA trained for
seconds on DNA with a planted motif must score motif-breaking SNVs above background SNVs on every score. Also:
strand symmetry (REF/ALT written on the other strand), record ends, statuses, the annotated VCF read back by pysam,
labels, and the table of scores (SCORES) that the columns, INFO fields and AUROC signs all read."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT

from nucel.inference import variants
from nucel.inference.variants import COLUMN, SCORES, Allele, VariantScore, VariantScorer, site_window
from nucel.inference.vcf import STATUS_INFO, annotated_line
from nucel.tokenization import reverse_complement
from nucel.tokenization.reference import ReferenceGenome

MOTIF = "TGACGTCATCGA"
COMPLEMENT = str.maketrans("ACGT", "TGCA")
HEADER = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def motif_genome(length, rng):
    """Random spacers of 20-39 bp between copies of MOTIF; returns (sequence, motif start positions)."""
    parts, starts, total = [], [], 0
    while total < length:
        spacer = "".join(rng.choice(list("ACGT"), int(rng.integers(20, 40))))
        parts += [spacer, MOTIF]
        starts.append(total + len(spacer))
        total += len(spacer) + len(MOTIF)
    return "".join(parts)[:length], starts


def write_vcf(path, rows):
    """rows: (chrom, pos, id, ref, alt) -> a minimal VCF."""
    with open(path, "w") as handle:
        handle.write(HEADER)
        for chrom, pos, name, ref, alt in rows:
            handle.write(f"{chrom}\t{pos}\t{name}\t{ref}\t{alt}\t.\t.\t.\n")
    return str(path)


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    """Pretrain a tiny ELECTRA (250 steps, ~20 s on 2 cores) on a planted-motif genome; export it; write a VCF of
    SNVs inside motif copies (label 1) and in the random spacers (label 0) of a held-out stretch."""
    from nucel.modeling_nucel import NucELConfig, NucELForPreTraining
    from nucel.tokenization import encode_sequence

    folder = tmp_path_factory.mktemp("oracle")
    rng = np.random.default_rng(0)
    genome, starts = motif_genome(220_000, rng)
    train = encode_sequence(genome[:200_000])
    config = NucELConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                         local_attention=32, max_position_embeddings=256, generator_hidden_size=64,
                         generator_num_hidden_layers=2, generator_num_attention_heads=4,
                         generator_intermediate_size=128)
    torch.manual_seed(0)
    model = NucELForPreTraining(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(250):
        offsets = rng.integers(0, len(train) - 128, 32)
        windows = torch.tensor(np.stack([train[o:o + 128] for o in offsets]).astype(np.int64))
        ids = torch.cat([torch.full((32, 1), 2), windows, torch.full((32, 1), 3)], 1)
        masked = torch.rand(ids.shape) < 0.15
        masked[:, [0, -1]] = False
        loss = model(ids.masked_fill(masked, 4), labels=ids.masked_fill(~masked, -100)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval().save_components(str(folder / "run"))

    held_out = genome[200_000:]
    (folder / "genome.fa").write_text(">chrO\n" + held_out + "\n")
    rows, labels = [], []
    for start in [s - 200_000 for s in starts if 200_100 < s < 219_900]:
        for position, label in ((start + int(rng.integers(0, len(MOTIF))), 1), (start - int(rng.integers(5, 15)), 0)):
            ref = held_out[position]
            alt = str(rng.choice([b for b in "ACGT" if b != ref]))
            rows.append(("chrO", position + 1, f"v{len(rows)}", ref, alt))
            labels.append(label)
    write_vcf(folder / "motif.vcf", rows)
    labelled = "".join(f"{row[2]},{label}\n" for row, label in zip(rows, labels))
    (folder / "labels.csv").write_text("id,label\n" + labelled)
    return folder


@pytest.mark.slow
def test_motif_breaking_snvs_score_above_background_on_every_score(oracle, tmp_path):
    lines = []
    scorer = VariantScorer.from_pretrained(str(oracle / "run"), window=201)
    summary = variants.score_vcf(scorer, str(oracle / "motif.vcf"), str(oracle / "genome.fa"),
                                 str(tmp_path / "scores.tsv"), labels=str(oracle / "labels.csv"), quiet=True,
                                 log=lines.append)
    assert summary["statuses"] == {"ok": summary["alleles"]} and summary["alleles"] > 200
    # measured (250 steps, seed 0): AUROC 0.97-1.00 for the generator and discriminator, ~0.95 for embeddings
    for score in SCORES:
        assert summary["metrics"][score]["auroc"] > 0.8, (score, summary["metrics"])
    assert any(line.startswith("  generator_llr") and "AUROC" in line for line in lines)


def test_scores_do_not_depend_on_which_strand_the_reference_is_written(tiny_export, tmp_path):
    rng = np.random.default_rng(1)
    chrom = "".join(rng.choice(list("ACGT"), 400))
    (tmp_path / "plus.fa").write_text(f">c\n{chrom}\n")
    (tmp_path / "minus.fa").write_text(f">c\n{reverse_complement(chrom)}\n")
    scorer = VariantScorer.from_pretrained(str(tiny_export), window=101)
    positions = [1, 2, 50, 200, 351, 399, 400]  # both ends: the window shifts inward
    plus_rows = [("c", p, ".", chrom[p - 1], "ACGT"[("ACGT".index(chrom[p - 1]) + 1) % 4]) for p in positions]
    minus_rows = [("c", 401 - p, ".", ref.translate(COMPLEMENT), alt.translate(COMPLEMENT))
                  for _, p, _, ref, alt in plus_rows]
    with ReferenceGenome(str(tmp_path / "plus.fa")) as plus, ReferenceGenome(str(tmp_path / "minus.fa")) as minus:
        scored_plus = scorer.score(plus, [r[:2] + r[3:] for r in plus_rows])
        scored_minus = scorer.score(minus, [r[:2] + r[3:] for r in minus_rows])
        for (_, pos, _, _, _), expected_start in ((plus_rows[0], 0), (plus_rows[-1], 299)):
            ids, offset = site_window(plus, "c", pos - 1, 101)
            assert len(ids) == 101 and offset == pos - 1 - expected_start  # never past the record's ends
    for a, b in zip(scored_plus, scored_minus):
        assert a.status == b.status == "ok"
        for score in SCORES:
            assert a.scores[score] == pytest.approx(b.scores[score], abs=1e-4), (a.pos, score)
    assert len({round(a.scores["discriminator_site"], 6) for a in scored_plus}) > 1  # the scores do vary


def test_statuses_split_alleles_and_round_trip_through_pysam(tiny_export, tmp_path):
    import pysam

    chrom = "ACGTACGTTAGGCTAACGATCGATNNACGT" * 4
    (tmp_path / "ref.fa").write_text(f">chr1\n{chrom}\n>chr2\nGGCCAATT\n")
    rows = [("chr1", 1, "first", "A", "C,G"),  # multi-allelic: two rows
            ("chr1", 3, "del", "GT", "G"), ("chr1", 5, "mnv", "AC", "GT"), ("chr1", 6, "sym", "C", "<DEL>"),
            ("chr1", 7, "mism", "T", "C"),  # the reference has G at 7
            ("chr1", 25, "n", "N", "A"), ("chr2", 8, "last", "T", "A")]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    lines = []
    scorer = VariantScorer.from_pretrained(str(tiny_export), window=21)
    summary = variants.score_vcf(scorer, vcf, str(tmp_path / "ref.fa"), str(tmp_path / "out.tsv"),
                                 vcf_out=str(tmp_path / "out.vcf.gz"), quiet=True, log=lines.append)
    assert summary["statuses"] == {"ok": 3, "indel": 1, "mnv": 1, "symbolic": 1, "ref_mismatch": 1, "non_acgt": 1}
    assert lines[-1] == "status: ok 3, indel 1, mnv 1, symbolic 1, ref_mismatch 1, non_acgt 1"
    table = [line.split("\t") for line in (tmp_path / "out.tsv").read_text().splitlines()]
    assert table[0] == ["CHROM", "POS", "ID", "REF", "ALT", *SCORES, "status"]
    assert [(r[2], r[4], r[-1]) for r in table[1:]] == [
        ("first", "C", "ok"), ("first", "G", "ok"), ("del", "G", "indel"), ("mnv", "GT", "mnv"),
        ("sym", "<DEL>", "symbolic"), ("mism", "C", "ref_mismatch"), ("n", "A", "non_acgt"), ("last", "A", "ok")]
    assert all(value == "" for row in table[3:8] for value in row[5:9])
    assert all(value != "" for row in (table[1], table[2], table[8]) for value in row[5:9])

    records = list(pysam.VariantFile(str(tmp_path / "out.vcf.gz")))  # BGZF, read by htslib
    assert [r.id for r in records] == [r[2] for r in rows]
    first = records[0]
    assert first.info["NUCEL_STATUS"] == ("ok", "ok")
    assert first.info["NUCEL_LLR"] == pytest.approx(tuple(float(r[5]) for r in table[1:3]), rel=1e-5)
    assert records[1].info["NUCEL_STATUS"] == ("indel",) and records[1].info["NUCEL_DISC"] == (None,)
    header = pysam.VariantFile(str(tmp_path / "out.vcf.gz")).header
    assert {"NUCEL_LLR", "NUCEL_DISC", "NUCEL_DISC_WINDOW", "NUCEL_EMB_DIST", "NUCEL_STATUS"} <= set(header.info)
    assert header.contigs["chr2"].length == 8
    assert not [name for name in os.listdir(tmp_path) if ".tmp-" in name]


@pytest.mark.slow
def test_unknown_chrom_and_bad_labels_are_one_line(tiny_export, tmp_path):
    (tmp_path / "ref.fa").write_text(">chr1\nACGTACGTAC\n")
    vcf = write_vcf(tmp_path / "in.vcf", [("chr1", 2, "a", "C", "T"), ("chrZ", 3, "b", "G", "A")])

    def run(*args):
        return subprocess.run([sys.executable, "-m", "nucel.inference.variants", "--model", str(tiny_export),
                               "--vcf", vcf,
                               "--reference", str(tmp_path / "ref.fa"), "--output", str(tmp_path / "o.tsv"),
                               "--quiet", *args], capture_output=True, text=True, cwd=REPO_ROOT,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})

    done = run()
    assert done.returncode == 1 and "error: " in done.stderr and "no sequence named 'chrZ'" in done.stderr
    assert not (tmp_path / "o.tsv").exists()
    write_vcf(tmp_path / "in.vcf", [("chr1", 2, "a", "C", "T"), ("chr1", 4, "b", "T", "A")])
    (tmp_path / "labels.csv").write_text("id,label\na,yes\n")
    done = run("--labels", str(tmp_path / "labels.csv"))
    assert done.returncode == 1 and "labels.csv:2: label must be 0 or 1" in done.stderr
    (tmp_path / "labels.csv").write_text("id,label\na,1\nchr1:4:T:A,0\n")
    done = run("--labels", str(tmp_path / "labels.csv"))
    assert done.returncode == 0, done.stderr
    assert "labels: 2 scored variants labelled (1 positive)" in done.stdout and "AUROC" in done.stdout


def test_an_export_without_the_head_scores_what_it_can(tiny_export, tmp_path):
    """Older exports saved the bare backbone: the detection columns stay empty and a note says why."""
    from nucel.modeling_nucel import NucELModel

    NucELModel.from_pretrained(tiny_export / "discriminator").save_pretrained(tmp_path / "old")
    (tmp_path / "ref.fa").write_text(">chr1\nACGTACGTACGGATTACA\n")
    vcf = write_vcf(tmp_path / "in.vcf", [("chr1", 5, "a", "A", "T")])
    lines = []
    scorer = VariantScorer.from_pretrained(str(tmp_path / "old"), generator=str(tiny_export / "generator"))
    variants.score_vcf(scorer, vcf, str(tmp_path / "ref.fa"), str(tmp_path / "o.tsv"), quiet=True,
                       log=lines.append)
    assert "note: discriminator_site not computed: the discriminator export has no replaced-token head" in lines[0]
    row = (tmp_path / "o.tsv").read_text().splitlines()[1].split("\t")
    assert row[5] != "" and row[6] == row[7] == "" and row[8] != "" and row[9] == "ok"


# ------------------------------------------------------------------------------------------ the table of scores
def test_every_score_is_one_class_with_its_own_column_and_info_key():
    assert list(SCORES) == ["generator_llr", "discriminator_site", "discriminator_window", "embedding_cosine_distance"]
    keys = [score.info_key for score in SCORES.values()]
    assert len(set(keys)) == len(keys) and STATUS_INFO[0] not in keys
    assert len({type(score) for score in SCORES.values()}) == len(SCORES)
    for name, score in SCORES.items():
        assert isinstance(score, VariantScore) and score.name == name
        assert re.fullmatch(r"[A-Za-z_][0-9A-Za-z_.]*", score.info_key)  # a valid VCF INFO ID
        assert score.description and '"' not in score.description  # it sits inside Description="..."
        assert score.disruption_sign in (-1.0, 1.0) and score.part in ("generator", "detector", "backbone")
    assert SCORES["generator_llr"].disruption_sign == -1.0  # a lower log-likelihood ratio is the disruptive one


def test_score_sites_fills_the_scores_in_table_order(tiny_export, tmp_path):
    (tmp_path / "ref.fa").write_text(">chr1\nACGTACGTACGGATTACAGGCATT\n")
    full = VariantScorer.from_pretrained(str(tiny_export), window=11)
    generator_only = VariantScorer.from_pretrained(str(tiny_export / "generator"), window=11)
    assert full.available == list(SCORES) and not full.missing
    assert generator_only.available == ["generator_llr"] and list(generator_only.missing) == list(SCORES)[1:]
    with ReferenceGenome(str(tmp_path / "ref.fa")) as reference:
        rows = full.score(reference, [("chr1", 5, "A", "T"), ("chr1", 5, "A", "G"), ("chr1", 12, "G", "C")])
        alone = generator_only.score(reference, [("chr1", 5, "A", "T")])
    assert all(list(row.scores) == list(SCORES) for row in rows)
    assert list(alone[0].scores) == ["generator_llr"]
    assert alone[0].scores["generator_llr"] == pytest.approx(rows[0].scores["generator_llr"], abs=1e-6)


def test_evaluate_orients_each_score_by_its_disruption_sign(monkeypatch):
    alleles = [Allele("c", i + 1, f"v{i}", "A", "C", "ok", {"generator_llr": -float(i % 2),
                                                             "discriminator_site": float(i % 2)}) for i in range(6)]
    labels = {f"v{i}": i % 2 for i in range(6)}  # the odd ones matter: lower LLR, higher discriminator logit
    lines = []
    metrics = variants.evaluate(alleles, labels, ["generator_llr", "discriminator_site"], lines.append)
    assert metrics["generator_llr"]["auroc"] == metrics["discriminator_site"]["auroc"] == 1.0
    assert "(generator_llr is negated)" in lines[0]
    monkeypatch.setattr(SCORES["discriminator_site"], "disruption_sign", -1.0)
    flipped = variants.evaluate(alleles, labels, ["discriminator_site"], lines.append)
    assert flipped["discriminator_site"]["auroc"] == 0.0
    assert "(generator_llr, discriminator_site are negated)" in lines[-2]


def test_annotated_line_adds_one_info_field_per_score_then_the_status():
    rows = [Allele("chr1", 5, "a", "A", alt, status, scores) for alt, status, scores in
            (("T", "ok", {"generator_llr": -1.25, "discriminator_site": 0.5}), ("<DEL>", "symbolic", {}))]
    scores = [SCORES["generator_llr"], SCORES["discriminator_site"]]
    line = "chr1\t5\ta\tA\tT,<DEL>\t.\t.\tDP=3\n"
    assert annotated_line(line, rows, scores) == ("chr1\t5\ta\tA\tT,<DEL>\t.\t.\tDP=3;NUCEL_LLR=-1.25,.;"
                                                  "NUCEL_DISC=0.5,.;NUCEL_STATUS=ok,symbolic\n")
    assert annotated_line(line.replace("DP=3", "."), rows, scores[1:]).endswith("\t.\tNUCEL_DISC=0.5,.;"
                                                                                 "NUCEL_STATUS=ok,symbolic\n")


class ReferenceLogProb(VariantScore):
    """A score added for the test: the generator's log p(ref) at the masked site."""

    name = "generator_ref_log_prob"
    info_key = "NUCEL_REF_LOGP"
    description = "log p(ref) at the masked site"
    disruption_sign = 1.0
    part = "generator"

    def compute(self, reading):
        return float(reading.log_probs[COLUMN[reading.ref]])


def test_a_new_score_is_one_more_class_in_the_table(tiny_export, tmp_path, monkeypatch):
    import pysam

    monkeypatch.setitem(SCORES, ReferenceLogProb.name, ReferenceLogProb())
    (tmp_path / "ref.fa").write_text(">chr1\nACGTACGTACGGATTACAGGCATT\n")
    vcf = write_vcf(tmp_path / "in.vcf", [("chr1", 5, "a", "A", "T"), ("chr1", 12, "b", "G", "C")])
    (tmp_path / "labels.csv").write_text("id,label\na,1\nb,0\n")
    lines = []
    scorer = VariantScorer.from_pretrained(str(tiny_export), window=11)
    summary = variants.score_vcf(scorer, vcf, str(tmp_path / "ref.fa"), str(tmp_path / "o.tsv"),
                                 vcf_out=str(tmp_path / "o.vcf"), labels=str(tmp_path / "labels.csv"), quiet=True,
                                 log=lines.append)
    table = [line.split("\t") for line in (tmp_path / "o.tsv").read_text().splitlines()]
    assert table[0][-2:] == ["generator_ref_log_prob", "status"]
    assert all(float(row[-2]) < 0 for row in table[1:])  # a log-probability
    vcf_file = pysam.VariantFile(str(tmp_path / "o.vcf"))
    assert vcf_file.header.info["NUCEL_REF_LOGP"].description == "log p(ref) at the masked site"
    assert list(vcf_file.header.info)[-2:] == ["NUCEL_REF_LOGP", "NUCEL_STATUS"]
    assert [r.info["NUCEL_REF_LOGP"][0] for r in vcf_file] == pytest.approx([float(r[-2]) for r in table[1:]],
                                                                            rel=1e-5)
    assert "generator_ref_log_prob" in summary["metrics"] and "generator_ref_log_prob" in variants.scores_help()
