"""Pretraining presets, command-line overrides, the compute estimate and world-size-invariant batches."""

import os

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, write_fasta

from nucel.modeling_nucel import NucELForPreTraining
from nucel.training.pretraining.batches import MaskedWindowBatches
from nucel.training.pretraining.compute import flops_per_token, run_estimate
from nucel.training.pretraining.config import incompatible_change, load_config
from nucel.training.pretraining.masking import Masker
from nucel.training.pretraining.run import parse_config

CONFIGS = os.path.join(REPO_ROOT, "training", "configs")
PRESETS = ["tiny", "small", "nucel-93m"]


def preset(name, *overrides):
    return load_config(os.path.join(CONFIGS, f"{name}.yaml"), [("fasta", "genome.fa"), *overrides])


@pytest.mark.parametrize("name", PRESETS)
def test_presets_record_their_compute_estimate(name):
    config = preset(name)
    estimate = run_estimate(config)
    assert config.compute_estimate["tokens"] == estimate["tokens"]
    assert config.compute_estimate["flops_per_token"] == estimate["flops_per_token"]
    assert config.compute_estimate["flops"] == pytest.approx(estimate["flops"], rel=1e-3)


def test_nucel_93m_is_the_published_recipe():
    config = preset("nucel-93m")
    model = config.model_config()
    assert (model.hidden_size, model.num_hidden_layers, model.num_attention_heads, model.intermediate_size) == \
        (512, 22, 16, 2048)
    assert (model.local_attention, model.global_attn_every_n_layers) == (128, 3)
    assert (model.generator_hidden_size, model.generator_num_hidden_layers) == (256, 11)
    assert (config.window_length, config.window_overlap, config.crop_length) == (1224, 100, 1024)
    assert (config.mask_rate, model.discriminator_weight, config.learning_rate, config.global_batch_size) == \
        (0.15, 50.0, 1e-4, 192)
    assert (config.mixed_precision, config.attn_implementation) == ("auto", "auto")
    with torch.device("meta"):
        discriminator = NucELForPreTraining(model).discriminator
    assert sum(p.numel() for p in discriminator.parameters()) / 1e6 == pytest.approx(92.3, abs=0.05)
    assert config.gradient_accumulation_steps(8) == 1 and config.gradient_accumulation_steps(1) == 8


def test_flops_per_token():
    """6 x matmul weights plus attention; ELECTRA adds the generator to the discriminator's MLM cost."""
    model = preset("nucel-93m").model_config()
    mlm, electra = flops_per_token(model, "mlm", 1026), flops_per_token(model, "electra", 1026)
    assert 6 * 85e6 < mlm < 6 * 92.3e6 + 12 * 512 * 1026 * 22  # non-embedding weights < all weights
    assert 1.05 < electra / mlm < 1.25  # the 256 x 11 generator is ~10% of the discriminator


def test_command_line_overrides():
    config = parse_config(["--config", os.path.join(CONFIGS, "tiny.yaml"), "--fasta", "a.fa", "b.fa.gz",
                           "--objective", "mlm", "--masking", "randommask", "--max-steps", "7",
                           "--hidden-size", "96", "--mask_rate", "0.2", "--validation-records", "[chrX, chrY]"])
    assert config.fasta == ["a.fa", "b.fa.gz"]
    assert (config.objective, config.masking, config.max_steps, config.mask_rate) == ("mlm", "randommask", 7, 0.2)
    assert config.model["hidden_size"] == 96 and config.model_config().hidden_size == 96
    assert config.validation_records == ["chrX", "chrY"]


@pytest.mark.parametrize("overrides, message", [
    ([("learning_rat", "1")], "--learning_rat: not a key of the pretraining config or of NucELConfig"),
    ([("max_steps", "0")], "config max_steps=0: expected a positive integer"),
    ([("fasta", "[]")], "config fasta=.*: expected one or more FASTA files"),
    ([("report_to", "wandb")], "config report_to='wandb': expected none or tensorboard"),
    ([("hidden_size", "100")], "hidden_size"),  # not a multiple of the heads: NucELConfig's own error
])
def test_bad_overrides(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(os.path.join(CONFIGS, "tiny.yaml"), [("fasta", "g.fa"), *overrides])


def test_unknown_yaml_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("objective: electra\nbatch_size: 8\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown key\(s\) \['batch_size'\]"):
        load_config(str(path))
    with pytest.raises(ValueError, match="nowhere.yaml: config file not found"):
        load_config(str(tmp_path / "nowhere.yaml"))


def test_global_batch_must_divide():
    config = preset("tiny")
    with pytest.raises(ValueError, match="global_batch_size=16: expected a multiple of per_device_batch_size x "
                                         "processes = 16 x 3"):
        config.gradient_accumulation_steps(3)


def test_incompatible_change():
    saved = preset("tiny").to_dict()
    assert incompatible_change(saved, preset("tiny", ("max_steps", 5000), ("eval_steps", 7)).to_dict()) is None
    assert incompatible_change(saved, preset("tiny", ("learning_rate", "3e-4")).to_dict())[0] == "learning_rate"
    assert incompatible_change(saved, preset("tiny", ("num_hidden_layers", "6")).to_dict())[0] == \
        "model.num_hidden_layers"


def test_batches_do_not_depend_on_the_process_count(tmp_path):
    """At every step, 2 ranks x 4 windows == 1 rank x 8 windows, with the same masks."""
    from nucel.tokenization.genome_store import GenomeStore
    from nucel.tokenization.prepare_genome import prepare_genome
    from nucel.training.pretraining.genome_windows import GenomeWindows

    rng = np.random.default_rng(0)
    fasta = write_fasta(tmp_path / "g.fa.gz", [("chr1", "".join(rng.choice(list("ACGT"), 30_000)))])
    prepare_genome([fasta], str(tmp_path / "store"), log=lambda *_: None)
    windows = GenomeWindows(GenomeStore(str(tmp_path / "store")), window_length=100, overlap=20, crop_length=80)
    masker = Masker("span", 0.15)
    one = MaskedWindowBatches(windows, masker, 8, 1, total_steps=100, seed=3)
    ranks = [MaskedWindowBatches(windows, masker, 4, 1, total_steps=100, rank=r, world_size=2, seed=3) for r in (0, 1)]
    for step in (0, 5, one.batches_per_epoch + 2):  # the second epoch too
        single = one[step]
        split = [rank[step] for rank in ranks]
        rows = {tuple(row.tolist()) for row in single["input_ids"]}
        assert rows == {tuple(row.tolist()) for part in split for row in part["input_ids"]}
        labels = {tuple(row.tolist()) for row in single["labels"]}
        assert labels == {tuple(row.tolist()) for part in split for row in part["labels"]}
    assert one.batches_per_epoch == ranks[0].batches_per_epoch == len(windows) // 8
    with pytest.raises(ValueError, match="fewer than one global batch"):
        MaskedWindowBatches(windows, masker, len(windows) + 1, 1, total_steps=1)


def test_warmup_longer_than_the_run_is_warned():
    config = load_config(os.path.join(CONFIGS, "tiny.yaml"), [("fasta", "g.fa"), ("max_steps", "60")])
    [warning] = config.warnings()
    assert "warmup_steps=100 >= max_steps=60" in warning and "--warmup-steps 6" in warning
    assert load_config(os.path.join(CONFIGS, "tiny.yaml"), [("fasta", "g.fa"), ("max_steps", "600")]).warnings() == []


def test_help_lists_every_config_and_model_key_with_its_default(capsys):
    from nucel.training.pretraining import run as pretrain
    from nucel.training.pretraining.config import FIELDS, MODEL_FIELDS

    with pytest.raises(SystemExit):
        pretrain.parse_config(["--help"])
    shown = capsys.readouterr().out
    for key in set(FIELDS) - {"model"}:
        assert f"\n  {key}: " in shown, key
    for key in MODEL_FIELDS - {"transformers_version", "architectures", "model_type", "auto_map"}:
        if key in NucELForPreTraining.config_class.__init__.__code__.co_varnames:
            assert f"\n  {key}: " in shown, key
    assert "\n  warmup_steps: 100\n" in shown and "\n  hidden_size: 512\n" in shown
