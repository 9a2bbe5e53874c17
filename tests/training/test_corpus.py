"""A corpus of several genomes: the manifest (checked, globs resolved), the sharing rule, the epoch order that
gives each genome its share of every stretch of training, and a run on the six shared genomes that records the
realised shares (and resumes exactly)."""

import json
import os

import numpy as np
import pytest
import yaml
from conftest import SHARED_DATA, read_metrics, write_config, write_fasta

from nucel.tokenization.genome_store import GenomeStore
from nucel.tokenization.prepare_genome import prepare_genome
from nucel.training.pretraining import corpus as corpora
from nucel.training.pretraining.build import build_data
from nucel.training.pretraining.config import incompatible_change, load_config
from nucel.training.pretraining.genome_windows import GenomeWindows

GENOMES = os.path.join(SHARED_DATA, "genomes")
SIX = {"human": "hg38_chr2_*.fa.gz", "ecoli": "ecoli_*.fa.gz", "yeast": "yeast_*.fa.gz", "fly": "dmel_*.fa.gz",
       "worm": "celegans_*.fa.gz", "plant": "athaliana_*.fa.gz"}


def six_genomes(folder, **genome_keys):
    """The shared slices as a corpus manifest (globs relative to the manifest's folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(GENOMES, folder)
    manifest = {"genomes": [{"name": name, "fasta": f"{relative}/{pattern}", **genome_keys.get(name, {})}
                            for name, pattern in SIX.items()]}
    path = folder / "corpus.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def config_with(tmp_path, manifest, **overrides):
    return load_config(write_config(tmp_path, **overrides), [("corpus", str(manifest)),
                                                             ("output_dir", str(tmp_path / "run"))])


# -------------------------------------------------------------------------------------------------- manifest
def test_manifest_resolves_globs_relative_to_itself(tmp_path):
    config = config_with(tmp_path / "elsewhere", six_genomes(tmp_path / "manifests"))
    assert [g["name"] for g in config.corpus["genomes"]] == list(SIX)
    assert config.corpus["sampling"] == "weight" and config.corpus["groups"] == {}
    assert [os.path.basename(f) for f in config.fasta] == [
        "hg38_chr2_1-2333275.fa.gz", "ecoli_K12_MG1655_GCF_000005845.2.fa.gz", "yeast_S288C_R64-2-1.fa.gz",
        "dmel_first1pct_per_chr.fa.gz", "celegans_first1pct_per_chr.fa.gz", "athaliana_first1pct_per_chr.fa.gz"]
    assert all(os.path.isabs(f) for f in config.fasta)
    assert corpora.genome_of_source(config.corpus) == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("manifest, message", [
    ({"genomes": [{"name": "a", "fasta": "missing*.fa"}]}, r"corpus.yaml genome 'a' fasta 'missing\*.fa': no such"),
    ({"genomes": [{"name": "a", "fasta": "g.fa", "weight": 0}]}, r"genome 'a' weight=0: expected a positive number"),
    ({"genomes": [{"name": "a", "fasta": "g.fa", "wieght": 2}]}, r"genomes\[1\]: unknown key\(s\) \['wieght'\]"),
    ({"genomes": [{"name": "a", "fasta": "g.fa"}, {"name": "a", "fasta": "g.fa"}]}, r"name='a': given twice"),
    ({"sampling": "size^x", "genomes": [{"name": "a", "fasta": "g.fa"}]}, r"sampling='size\^x': expected weight, "),
    ({"genomes": [{"name": "a", "fasta": "g.fa"}], "groups": {"b": 1}}, r"groups: 'b' is no genome's group"),
    ({"genomes": []}, r"genomes: expected a list of genomes"),
    ({"genome": []}, r"unknown key\(s\) \['genome'\]"),
])
def test_bad_manifests_are_one_line(tmp_path, manifest, message):
    write_fasta(tmp_path / "g.fa", [("r", "ACGT" * 100)])
    (tmp_path / "corpus.yaml").write_text(yaml.safe_dump(manifest))
    with pytest.raises(ValueError, match=message):
        config_with(tmp_path, tmp_path / "corpus.yaml")


def test_corpus_and_fasta_together_are_refused(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa", [("r", "ACGT" * 100)])
    (tmp_path / "corpus.yaml").write_text(yaml.safe_dump({"genomes": [{"name": "a", "fasta": "g.fa"}]}))
    with pytest.raises(ValueError, match="config corpus and fasta: both given"):
        load_config(write_config(tmp_path), [("corpus", str(tmp_path / "corpus.yaml")), ("fasta", fasta)])


def test_a_resume_may_move_files_but_not_change_weights(tmp_path):
    saved = config_with(tmp_path, six_genomes(tmp_path / "a")).to_dict()
    moved = config_with(tmp_path, six_genomes(tmp_path / "b" / "deeper")).to_dict()
    assert incompatible_change(saved, moved) is None
    reweighted = config_with(tmp_path, six_genomes(tmp_path / "c", human={"weight": 2})).to_dict()
    assert incompatible_change(saved, reweighted)[0] == "corpus"
    old = {key: value for key, value in saved.items() if key not in ("corpus", "repeat_weight")}
    plain = config_with(tmp_path, six_genomes(tmp_path / "a")).to_dict() | {"corpus": {}, "fasta": ["x.fa"]}
    assert incompatible_change(old, plain) is None  # written before these keys: their defaults


# ------------------------------------------------------------------------------------------------ the rule
def test_shares_follow_the_documented_rule():
    corpus = {"sampling": "weight", "groups": {}, "genomes": [
        {"name": n, "weight": w, "group": None} for n, w in (("a", 1.0), ("b", 3.0))]}
    assert np.allclose(corpora.shares(corpus, [100, 900]), [0.25, 0.75])
    assert np.allclose(corpora.shares({**corpus, "sampling": "size"}, [100, 900]), [100 / 2800, 2700 / 2800])
    assert np.allclose(corpora.shares({**corpus, "sampling": "size^0.5"}, [100, 900]), [10 / 100, 90 / 100])
    grouped = {"sampling": "weight", "groups": {"animals": 3.0}, "genomes": [
        {"name": "a", "weight": 1.0, "group": "animals"}, {"name": "b", "weight": 1.0, "group": "animals"},
        {"name": "c", "weight": 5.0, "group": None}]}
    assert np.allclose(corpora.shares(grouped, [10, 10, 10]), [0.375, 0.375, 0.25])
    with pytest.raises(ValueError, match=r"corpus genome\(s\) \['b'\]: no training window"):
        corpora.shares(corpus, [10, 0])


def test_quotas_sum_to_the_epoch():
    counts = corpora.quotas([1 / 3, 1 / 3, 1 / 3], 100)
    assert counts.sum() == 100 and sorted(counts) == [33, 33, 34]


def test_every_stretch_of_an_epoch_holds_each_genome_at_its_share():
    genome_ids = np.repeat([0, 1, 2], [50, 400, 1550])  # a small genome upweighted 13x, a large one down
    mixture = corpora.Mixture([0.3, 0.3, 0.4])
    order = mixture.epoch_order(genome_ids, seed=5, epoch=0)
    assert len(order) == len(genome_ids)
    served = genome_ids[order % len(genome_ids)]
    assert np.bincount(served).tolist() == [600, 600, 800]
    for length in (16, 100, 333, 2000):  # any prefix: within one window per genome (plus the rounding)
        assert np.all(np.abs(np.bincount(served[:length], minlength=3) - length * mixture.shares) <= 2)
    # the small genome's 50 windows are each served 12 times, as distinct items (fresh crops and masks)
    assert len(set(order.tolist())) == len(order) and np.bincount(order[served == 0] % len(genome_ids)).max() == 12
    assert np.array_equal(order, mixture.epoch_order(genome_ids, seed=5, epoch=0))
    assert not np.array_equal(order, mixture.epoch_order(genome_ids, seed=5, epoch=1))


def test_a_repeated_serving_is_the_same_window_drawn_afresh(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa", [("r", "".join(np.random.default_rng(0).choice(list("ACGT"), 5_000)))])
    prepare_genome([fasta], tmp_path / "store", log=lambda *_: None)
    windows = GenomeWindows(GenomeStore(tmp_path / "store"), window_length=600, overlap=100, crop_length=300, seed=1)
    again = [windows.window(i + len(windows), 0) for i in range(len(windows))]
    first = [windows.window(i, 0) for i in range(len(windows))]
    assert [w[:2] for w in again] == [w[:2] for w in first]  # same record and window start
    assert [w[2:] for w in again] != [w[2:] for w in first]  # other crops and strands


# ------------------------------------------------------------------------------------------- six genomes
def test_six_genomes_with_equal_weights_share_the_tokens(tmp_path):
    config = config_with(tmp_path, six_genomes(tmp_path))
    prepare_genome(config.fasta, config.store_directory, log=lambda *_: None)
    _, train, _ = build_data(config)
    sizes = np.bincount(train.genome_ids)
    assert sizes.max() / sizes.min() > 10  # uniform over bases would give yeast ten times the worm's share
    for served in (160, 1_600, 3 * len(train) + 37):  # 10 steps of 16, 100 steps, three epochs and a bit
        _, shares = corpora.realised_token_shares(train, len(train), served, 130)
        assert np.all(np.abs(shares - 1 / 6) < 0.02), (served, shares)
    # what plain --fasta sampling would have given: the genomes' sizes
    assert np.abs(sizes / sizes.sum() - 1 / 6).max() > 0.3


@pytest.mark.slow
def test_a_corpus_run_records_its_shares_and_resumes_exactly(tmp_path):
    from nucel.training.pretraining import run as pretrain

    manifest = six_genomes(tmp_path / "corpus", human={"weight": 2.0})
    settings = dict(max_steps=8, save_steps=4, eval_steps=4, global_batch_size=16, per_device_batch_size=16,
                    repeat_weight=0.5)

    def train(folder, *args, **overrides):
        pretrain.main(["--config", write_config(folder, **{**settings, **overrides}), "--corpus", str(manifest),
                       "--output-dir", str(folder / "run"), *args])
        return folder / "run"

    straight = train(tmp_path / "straight")
    train(tmp_path / "resumed", max_steps=4)
    resumed = train(tmp_path / "resumed", "--resume")
    def losses(output_dir):
        return [{k: v for k, v in record.items() if "loss" in k or "accuracy" in k or k == "step"}
                for record in read_metrics(output_dir)]

    assert losses(resumed) == losses(straight) and len(losses(straight)) >= 3
    summary = json.loads((straight / "pretraining_summary.json").read_text())["corpus"]
    assert [g["name"] for g in summary["genomes"]] == list(SIX)
    assert summary["repeat_weight"] == 0.5 and summary["sampling"] == "weight"
    targets = np.array([g["target_share"] for g in summary["genomes"]])
    assert np.allclose(targets, [2 / 7] + [1 / 7] * 5)
    realised = np.array([g["realised_share"] for g in summary["genomes"]])
    assert np.abs(realised - targets).max() < 0.02 and sum(g["tokens"] for g in summary["genomes"]) == 8 * 16 * 130
    from nucel.hub_cards.card import _corpus_lines

    lines = _corpus_lines(summary)
    assert lines[0].startswith("- corpus (sampling `weight`): human weight 2, target 28.6%, trained on ")
    assert lines[1] == "- soft-masked (lower-case) repeats: loss weight 0.5"
