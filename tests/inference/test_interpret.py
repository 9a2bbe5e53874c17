"""nucel-interpret (inference/interpret.py and inference/interpretation/).

The oracle: a tiny NucEL classifier trained for seconds to find a CTCF site (JASPAR MA0139.1) planted in random
DNA. ISM must put its most important position inside the planted site, and the motif match must name MA0139.1.
Also: each ISM entry equals a direct forward pass, strand averaging is strand-symmetric, a local layer's attention
is zero outside its window, each picture has its panels, and bad input is one line before anything is written."""

import json
import os

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, strong_site, tiny_config, write_fasta
from PIL import Image

from nucel.inference import interpret
from nucel.inference.interpretation import plots
from nucel.inference.interpretation.attention import attention_maps
from nucel.inference.interpretation.motif_files import read_motifs
from nucel.inference.interpretation.motif_match import important_segments, match_segments
from nucel.inference.interpretation.mutagenesis import SaturationMutagenesis
from nucel.modeling_nucel import (
    NucELConfig,
    NucELForMaskedLM,
    NucELForPreTraining,
    NucELForReplacedTokenDetection,
    NucELForSequenceClassification,
    NucELModel,
)
from nucel.tokenization import reverse_complement
from nucel.tokenization.token_layout import NATIVE

MEME = os.path.join(SHARED_DATA, "motifs", "JASPAR2020_CORE_vertebrates_non-redundant_pfms_meme.txt.gz")
LENGTH, SITE = 40, 19  # random DNA with one CTCF site (19 bp) in the positives


@pytest.fixture(scope="module")
def motifs():
    return read_motifs(MEME)


def planted(rng, ctcf, count):
    """(ids, labels, site starts): half the rows carry a CTCF site drawn from its PWM at a random position."""
    rows = rng.integers(0, 4, (count, LENGTH))
    labels, starts = rng.integers(0, 2, count), np.full(count, -1)
    for i in np.nonzero(labels)[0]:
        starts[i] = rng.integers(0, LENGTH - SITE + 1)
        rows[i, starts[i]:starts[i] + SITE] = ["ACGT".index(c) for c in strong_site(ctcf, rng)]
    return (rows + 5).astype(np.uint8), labels, starts  # token ids of A, C, G, T are 5..8


@pytest.fixture(scope="module")
def ctcf_classifier(tmp_path_factory, motifs):
    """A 2-layer NucEL classifier trained 600 steps (~8 s on 2 cores) on planted CTCF sites; saved as
    training/finetune.py saves its model/ (save_pretrained); returns (folder, held-out positives)."""
    ctcf = {m.id: m for m in motifs}["MA0139.1"]
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    config = NucELConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         max_position_embeddings=128, num_labels=2, classifier_pooling="mean")
    model = NucELForSequenceClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    train_ids, train_labels, _ = planted(rng, ctcf, 4000)
    for _ in range(600):
        rows = rng.integers(0, len(train_ids), 32)
        input_ids, attention_mask = NATIVE.batch(list(train_ids[rows]), "cpu")
        loss = model(input_ids=input_ids, attention_mask=attention_mask,
                     labels=torch.from_numpy(train_labels[rows])).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    folder = tmp_path_factory.mktemp("ctcf") / "model"
    model.save_pretrained(folder)
    test_ids, test_labels, test_starts = planted(rng, ctcf, 60)
    positives = [(f"pos{i}", test_ids[i], int(test_starts[i])) for i in np.nonzero(test_labels)[0][:12]]
    return str(folder), positives


@pytest.mark.slow
def test_ism_finds_the_planted_motif_and_names_it(ctcf_classifier, motifs):
    folder, positives = ctcf_classifier
    ism = SaturationMutagenesis.from_pretrained(folder, device="cpu")
    inside, named = [], []
    for name, ids, start in positives:
        result = ism(name, ids)
        top = int(result.top_positions(1)[0])
        inside.append(start <= top < start + SITE)
        segments = important_segments(result.importance, count=1)
        best = match_segments(name, ids, segments, motifs, top=1)
        named.append(best[0].hit.motif_id if best and best[0].significant else None)  # significant: E <= 0.05
    # By chance the top position falls in the 19-bp site 19/40 of the time, and a match names CTCF almost never.
    assert np.mean(inside) >= 0.8, inside
    assert named.count("MA0139.1") >= 0.75 * len(named), named


@pytest.mark.slow
def test_cli_on_a_classifier_writes_every_file_and_picture(ctcf_classifier, tmp_path):
    folder, positives = ctcf_classifier
    fasta = write_fasta(tmp_path / "seqs.fa.gz", [(name, "".join("ACGT"[i - 5] for i in ids))
                                                 for name, ids, _ in positives[:2]])
    out = tmp_path / "out"
    summary = interpret.main(["--model", folder, "--fasta", fasta, "--output-dir", str(out), "--motifs", MEME,
                              "--scan", "--attention", "--top-k", "5", "--quiet"])
    name, ids, start = positives[0]
    sequence_dir = out / name
    effects = np.load(sequence_dir / "ism.npy")
    assert effects.shape == (LENGTH, 4)
    table = (sequence_dir / "ism.tsv").read_text().splitlines()
    assert table[0].split("\t") == ["position", "reference", "A", "C", "G", "T", "importance", "top_rank"]
    assert len(table) == LENGTH + 1 and sum(1 for row in table[1:] if row.split("\t")[-1]) == 5
    matches = (sequence_dir / "motif_matches.tsv").read_text().splitlines()
    assert matches[1].split("\t")[5] == "MA0139.1"
    attention = np.load(sequence_dir / "attention.npy")
    assert attention.shape == (2, 4, LENGTH + 2, LENGTH + 2) and attention.dtype == np.float16
    hits = (out / "motif_hits.tsv").read_text().splitlines()
    assert any(row.split("\t")[:2] == [name, "MA0139.1"] and int(row.split("\t")[3]) == start for row in hits[1:])
    for picture in ("ism_heatmap.png", "ism_logo.png", "motif_matches.png", "attention_grid.png",
                    "attention_profile.png"):
        path = sequence_dir / picture
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) > 100
    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 2 * 5 and "MA0139.1" in report
    assert set(summary["files"][name]) >= {"ism.npy", "ism.tsv", "ism_logo.png", "attention.npy"}
    assert json.loads((out / "interpret.json").read_text())["head"] == "classifier"


# ------------------------------------------------------------------------------------------- ISM is exact
def direct(model, ids):
    input_ids, attention_mask = NATIVE.batch([ids], "cpu")
    with torch.no_grad():
        return model(input_ids=input_ids, attention_mask=attention_mask).logits[0].double()


@pytest.fixture(scope="module")
def tiny_heads():
    torch.manual_seed(1)
    config = tiny_config(num_labels=3, classifier_pooling="mean")
    return {"classifier": NucELForSequenceClassification(config).eval(),
            "generator": NucELForMaskedLM(config).eval(),
            "discriminator": NucELForReplacedTokenDetection(config).eval()}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["classifier", "generator", "discriminator"])
def test_every_effect_equals_a_direct_forward_pass(tiny_heads, kind):
    model = tiny_heads[kind]
    rng = np.random.default_rng(2)
    ids = rng.integers(5, 9, 37).astype(np.uint8)
    ids[10] = 9  # an N: all four bases are changes there
    result = SaturationMutagenesis(model, kind, target=1, batch_size=7)("s", ids)
    for position, base in [(0, 0), (10, 2), (20, 3), (36, 1)]:
        mutant = ids.copy()
        mutant[position] = 5 + base
        if kind == "classifier":
            def log_odds(logits):
                log_p = torch.log_softmax(logits, -1)
                return float(log_p[1] - torch.logsumexp(log_p[[0, 2]], 0))
            expected = log_odds(direct(model, mutant)) - log_odds(direct(model, ids))
        elif kind == "discriminator":
            expected = -(float(direct(model, mutant)[position + 1]) - float(direct(model, ids)[position + 1]))
        else:
            masked = ids.copy()
            masked[position] = 4
            log_p = torch.log_softmax(direct(model, masked)[position + 1, 5:9], -1)
            reference = log_p.mean() if ids[position] == 9 else log_p[ids[position] - 5]
            expected = float(log_p[base] - reference)
        if ids[position] == 5 + base and position != 10:
            expected = 0.0
        assert result.effects[position, base] == pytest.approx(expected, abs=2e-5)
    assert (result.effects[np.arange(37), ids.clip(5, 8) - 5][ids != 9] == 0).all()


@pytest.mark.slow
def test_batch_size_does_not_change_effects_and_strand_average_is_symmetric(tiny_heads):
    model = tiny_heads["classifier"]
    ids = np.random.default_rng(3).integers(5, 9, 50).astype(np.uint8)
    one = SaturationMutagenesis(model, "classifier", batch_size=1)("s", ids).effects
    many = SaturationMutagenesis(model, "classifier", batch_size=64)("s", ids).effects
    np.testing.assert_allclose(one, many, atol=1e-5)
    both = SaturationMutagenesis(model, "classifier", reverse_complement_average=True)
    plus, minus = both("s", ids).effects, both("s", reverse_complement(ids)).effects
    np.testing.assert_allclose(plus, minus[::-1, ::-1], atol=1e-5)  # A C G T complement to T G C A


def test_classifier_target_by_name_and_bad_target(tiny_heads):
    model = tiny_heads["classifier"]
    model.config.id2label = {0: "low", 1: "mid", 2: "high"}
    assert SaturationMutagenesis(model, "classifier", target="mid").target == 1
    assert SaturationMutagenesis(model, "classifier").target == 2
    with pytest.raises(ValueError, match="--target top: not a class of this classifier .*0=low, 1=mid, 2=high"):
        SaturationMutagenesis(model, "classifier", target="top")


# ------------------------------------------------------------------------------------------- attention
def test_local_layer_attention_is_zero_outside_its_window():
    torch.manual_seed(4)
    encoder = NucELModel(tiny_config()).eval()  # local_attention 16: a local query sees 8 tokens each side
    ids = np.random.default_rng(4).integers(5, 9, 78).astype(np.uint8)
    maps = attention_maps(encoder, "s", ids)
    assert maps.maps.shape == (4, 4, 80, 80)
    np.testing.assert_allclose(maps.maps.sum(-1), 1.0, atol=1e-5)
    distance = np.abs(np.subtract.outer(np.arange(80), np.arange(80)))
    for layer, kind in enumerate(maps.layer_types):
        outside = maps.maps[layer][:, distance > 8]
        if kind == "sliding_attention":
            assert (outside == 0).all() and (maps.maps[layer][:, distance <= 8] > 0).all()
        else:
            assert (outside > 0).all()
    assert encoder.config._attn_implementation == "sdpa"  # eager only while the maps were taken
    # Uniform attention reads 1 everywhere, edges included; the model's own maps average about 1.
    uniform = maps.maps.copy()
    for layer in range(4):
        visible = maps.visible(layer)
        uniform[layer] = visible / visible.sum(axis=1, keepdims=True)
    maps_uniform = type(maps)(maps.name, maps.ids, uniform, maps.layer_types, maps.half_window)
    np.testing.assert_allclose(maps_uniform.received(), 1.0, atol=1e-6)
    assert 0.5 < maps.received().mean() < 1.5
    assert maps.rollout().shape == (78,) and set(maps.received_by_type()) == {"local", "global"}


# ------------------------------------------------------------------------------------------- pictures
@pytest.mark.slow
def test_each_picture_has_its_panels(tiny_heads, motifs, tmp_path):
    ids = np.random.default_rng(5).integers(5, 9, 250).astype(np.uint8)
    result = SaturationMutagenesis(tiny_heads["generator"], "generator")("s", ids)
    heights = {}
    for name, figure, panels in [
        ("heatmap", plots.ism_heatmap(result), 3 + 1),  # 100 positions a row, and the colour bar
        ("logo", plots.ism_logo(result, top_k=5), 3),
        ("heatmap_short", plots.ism_heatmap(SaturationMutagenesis(tiny_heads["generator"], "generator")(
            "t", ids[:60])), 1 + 1),
    ]:
        assert len(figure.axes) == panels, name
        path = plots.save(figure, tmp_path / f"{name}.png")
        with Image.open(path) as image:
            heights[name] = image.size[1]
    assert heights["heatmap"] > 1.5 * heights["heatmap_short"]
    torch.manual_seed(6)
    maps = attention_maps(NucELModel(tiny_config()).eval(), "s", ids[:40])
    assert len(plots.attention_grid(maps).axes) == 4 * 4
    assert len(plots.attention_profile(maps).axes) == 2
    segments = important_segments(result.importance, count=2)
    matches = match_segments("s", ids, segments, motifs, top=2)
    # One row per segment: its best significant match, or "no significant match" (an untrained model on random
    # DNA: its segments are random DNA, whose best motif almost never reaches E <= 0.05).
    rows = sum(1 for match in matches if match.rank == 1 or not match.significant)
    assert len(segments) == rows == 2
    assert len(plots.motif_matches(result, matches, {m.id: m for m in motifs}).axes) == 2 * rows


# ------------------------------------------------------------------------------------------- runs and bad input
@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """An untrained tiny ELECTRA exported as a pretraining run exports it: discriminator/ and generator/."""
    torch.manual_seed(7)
    folder = tmp_path_factory.mktemp("run")
    NucELForPreTraining(tiny_config()).save_components(str(folder))
    return str(folder)


@pytest.mark.slow
def test_run_folder_generator_with_attention_and_scan_only(run_folder, tmp_path):
    sequence = "GTCTATAAATAGAGCAGCCAGTTGCAGGGCTCCATTCTGCTTTCCAACTGCCTGACTGCTTGTTCG"
    summary = interpret.main(["--model", run_folder, "--head", "generator", "--attention", "--sequence", sequence,
                              "--output-dir", str(tmp_path / "gen"), "--quiet", "--no-report"])
    assert summary["head"] == "generator" and summary["folder"].endswith("generator")
    assert np.load(tmp_path / "gen" / "seq1" / "attention.npy").shape == (2, 2, 68, 68)
    assert not (tmp_path / "gen" / "report.html").exists()
    summary = interpret.main(["--model", run_folder, "--sequence", sequence, "--output-dir",
                              str(tmp_path / "disc"), "--quiet"])
    assert summary["head"] == "discriminator" and "original-token" in summary["measure"]
    reference = tmp_path / "ref.fa"
    reference.write_text(f">chrT\n{sequence * 3}\n")
    (tmp_path / "regions.bed").write_text("chrT\t5\t45\t.\t0\t-\nchrT\t70\t100\tsecond\n")
    summary = interpret.main(["--model", run_folder, "--bed", str(tmp_path / "regions.bed"), "--reference",
                              str(reference), "--output-dir", str(tmp_path / "bed"), "--quiet", "--no-report"])
    assert summary["sequences"] == ["chrT:6-45", "second"]
    assert np.load(tmp_path / "bed" / "chrT_6-45" / "ism.npy").shape == (40, 4)
    interpret.main(["--scan", "--motifs", MEME, "--sequence", sequence, "--output-dir", str(tmp_path / "scan"),
                    "--max-p", "1e-3", "--quiet"])
    hits = (tmp_path / "scan" / "motif_hits.tsv").read_text().splitlines()
    assert hits[0].startswith("sequence\tmotif_id") and len(hits) > 1
    assert not (tmp_path / "scan" / "seq1" / "ism.npy").exists()


def bare_encoder(tmp_path):
    torch.manual_seed(8)
    folder = tmp_path / "bare"
    NucELModel(tiny_config()).save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("case, message", [
    ("long", "sequence 'seq1' is 300 bp, but the model reads at most 254 bases at once"),
    ("format", "unknown motif file format"),
    ("empty_fasta", "no '>' header found"),
    ("empty_record", "sequence 'a' is empty"),
    ("no_head", "a NucELModel has no head to interpret"),
    ("wrong_head", "its weights have no replaced-token head"),
    ("run_classifier", "a pretraining run has no classifier"),
    ("scan_without_motifs", "--scan needs --motifs"),
    ("motifs_unused", "--motifs with --head none"),
    ("taxon_without_motifs", "--taxon vertebrates: selects --motifs"),
    ("bad_evalue", "--max-evalue 0.0: a positive E-value expected"),
    ("meme_taxon", "--taxon fungi: " + MEME + " carries no taxon information"),
])
def test_bad_input_is_one_line_before_anything_is_written(run_folder, tmp_path, case, message):
    out = tmp_path / "out"
    base = ["--output-dir", str(out), "--quiet"]
    short = ["--sequence", "ACGTACGTAC"]
    if case == "long":
        argv = ["--model", run_folder, "--sequence", "A" * 300]
    elif case == "format":
        (tmp_path / "m.txt").write_text(">MA0001.1 AGL3\nA [ 0 3 79 ]\n")
        argv = ["--model", run_folder, "--motifs", str(tmp_path / "m.txt"), *short]
    elif case == "empty_fasta":
        (tmp_path / "empty.fa").write_text("")
        argv = ["--model", run_folder, "--fasta", str(tmp_path / "empty.fa")]
    elif case == "empty_record":
        (tmp_path / "e.fa").write_text(">a\n>b\nACGT\n")
        argv = ["--model", run_folder, "--fasta", str(tmp_path / "e.fa")]
    elif case == "no_head":
        argv = ["--model", bare_encoder(tmp_path), *short]
    elif case == "wrong_head":
        argv = ["--model", bare_encoder(tmp_path), "--head", "discriminator", *short]
    elif case == "run_classifier":
        argv = ["--model", run_folder, "--head", "classifier", *short]
    elif case == "motifs_unused":
        argv = ["--model", run_folder, "--head", "none", "--attention", "--motifs", MEME, *short]
    elif case == "taxon_without_motifs":
        argv = ["--model", run_folder, "--taxon", "vertebrates", *short]
    elif case == "bad_evalue":
        argv = ["--scan", "--motifs", MEME, "--max-evalue", "0", *short]
    elif case == "meme_taxon":
        argv = ["--scan", "--motifs", MEME, "--taxon", "fungi", *short]
    else:
        argv = ["--scan", *short]
    with pytest.raises(SystemExit) as exited:
        interpret.cli(argv + base)
    error = str(exited.value.code)  # what `error: ...` the interpreter prints on exit
    assert message in error and "\n" not in error, error
    assert not out.exists()
