"""Soft-masked repeats: the genome store keeps lower case as a bit per base (format 2, no extra bytes), windows can
be filtered by their repeat fraction, and `repeat_weight` weights both objectives' losses exactly as written."""

import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import write_fasta

from nucel.modeling_nucel import NucELConfig, NucELForMaskedLM, NucELForPreTraining
from nucel.tokenization import encode_sequence
from nucel.tokenization.genome_store import GenomeStore
from nucel.tokenization.prepare_genome import FORMAT_VERSION, build_lock, prepare_genome
from nucel.training.pretraining.batches import MaskedWindowBatches, mask_windows
from nucel.training.pretraining.genome_windows import GenomeWindows
from nucel.training.pretraining.masking import Masker


def planted(length=6_000, seed=0):
    """Random bases with lower-case (soft-masked) stretches at 1,000-1,999 and 4,000-4,499."""
    rng = np.random.default_rng(seed)
    bases = list("".join(rng.choice(list("ACGT"), length)))
    for begin, end in ((1_000, 2_000), (4_000, 4_500)):
        bases[begin:end] = [b.lower() for b in bases[begin:end]]
    return "".join(bases)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("repeats")
    fasta = write_fasta(root / "g.fa.gz", [("chrR", planted()), ("chrU", "ACGTAC" * 300)])
    prepare_genome([fasta], root / "store", log=lambda *_: None)
    return GenomeStore(root / "store")


def test_store_keeps_the_soft_mask_in_the_same_bytes(store):
    sequence = planted()
    soft = np.array([c.islower() for c in sequence])
    assert os.path.getsize(os.path.join(store.directory, "tokens.u8")) == store.total_length == len(sequence) + 1_800
    assert np.array_equal(store.record_tokens(0), encode_sequence(sequence.upper()))
    assert np.array_equal(store.record_repeats(0), soft)
    assert np.array_equal(store.record_repeats(0, 990, 1_010), soft[990:1_010])
    assert store.records[0]["repeat_count"] == 1_500 and store.records[1]["repeat_count"] == 0
    assert store.index["repeat_count"] == 1_500 and store.index["format_version"] == FORMAT_VERSION == 2


def test_an_old_format_store_is_refused_in_one_line_and_rebuilt(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa.gz", [("r", "acgtACGT" * 40)])
    prepare_genome([fasta], tmp_path / "store", log=lambda *_: None)
    index_path = tmp_path / "store" / "index.json"
    index = json.loads(index_path.read_text())
    index_path.write_text(json.dumps({**index, "format_version": 1}))
    with pytest.raises(ValueError, match=r"index.json: genome store format 1, this NucEL reads format 2 \(which keeps "
                                         r"soft-masked repeats\); prepare it again: `nucel prepare-genome"):
        GenomeStore(tmp_path / "store")
    messages = []
    prepare_genome([fasta], tmp_path / "store", log=messages.append)
    assert "up to date" not in messages[-1] and "160 soft-masked (50.0%)" in messages[-1]
    assert GenomeStore(tmp_path / "store").record_repeats(0)[:4].all()


def test_a_store_being_built_is_never_read(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa.gz", [("r", "ACGT" * 100)])
    prepare_genome([fasta], tmp_path / "store", log=lambda *_: None)
    with build_lock(tmp_path / "store").acquire():  # another builder (a separate open file: flock conflicts)
        with pytest.raises(ValueError, match=r"store: genome store being built by another process \(pid \d+ on "
                                             r".* since .*\); wait for that `nucel prepare-genome`"):
            GenomeStore(tmp_path / "store")
        with pytest.raises(ValueError, match="genome store being built by another process"):
            prepare_genome([fasta], tmp_path / "store", log=lambda *_: None)
    assert GenomeStore(tmp_path / "store").total_length == 400  # released: readable again


def test_windows_filter_by_repeat_fraction_and_carry_the_mask(store):
    plain = GenomeWindows(store, window_length=500, overlap=0, crop_length=500, max_n_fraction=0.1)
    assert plain.dropped_repeats == 0 and len(plain) == 12 + 3
    filtered = GenomeWindows(store, window_length=500, overlap=0, crop_length=500, max_repeat_fraction=0.5,
                             repeats=True, reverse_complement_prob=0.0)
    # chrR windows at 1000, 1500 (all lower case) and 4000 (all) are dropped; none is half-and-half
    assert filtered.dropped_repeats == 3 and len(filtered) == len(plain) - 3
    assert filtered.summary()["dropped_for_repeats"] == 3
    soft = np.array([c.islower() for c in planted()])
    flipped = GenomeWindows(store, window_length=500, overlap=0, crop_length=500, repeats=True,
                            reverse_complement_prob=1.0)
    for index in range(len(flipped)):
        record_id, start, offset, flip = flipped.window(index, 0)
        sample = flipped.sample(index, 0)
        expected = soft[start:start + 500] if record_id == 0 else np.zeros(500, dtype=bool)
        assert flip and sample["repeats"].dtype == torch.bool
        assert torch.equal(sample["repeats"], torch.from_numpy(np.concatenate(([False], expected[::-1], [False]))))


def tiny_config(**overrides):
    return NucELConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       max_position_embeddings=512, local_attention=128, generator_hidden_size=16,
                       generator_num_hidden_layers=1, generator_num_attention_heads=2, generator_intermediate_size=32,
                       **overrides)


def weighted_batch(store, weight):
    windows = GenomeWindows(store, window_length=500, overlap=0, crop_length=500, repeats=True, seed=3)
    masker = Masker("uniform", 0.15)
    indices = [2, 3, 8, 12]  # chrR 1000-1999 (all repeats), 1500; 4000 (repeats); chrU
    return windows, mask_windows(windows, indices, masker, step=0, seed=3, stream=0, repeat_weight=weight), indices


def test_batches_weight_exactly_the_soft_masked_positions(store):
    windows, batch, indices = weighted_batch(store, 0.1)
    expected = torch.stack([torch.where(windows.sample(i, 0)["repeats"], 0.1, 1.0) for i in indices])
    assert torch.equal(batch["loss_weight"], expected)
    assert (batch["loss_weight"] == 0.1).sum() > 500 and (batch["loss_weight"] == 1.0).sum() > 500
    unweighted = MaskedWindowBatches(windows, Masker("uniform", 0.15), 4, 1, 2, seed=3)[0]
    assert set(unweighted) == {"input_ids", "labels"}  # repeat_weight 1: today's batches, no weights at all


def test_electra_loss_is_the_hand_computed_weighted_mean(store):
    _, batch, _ = weighted_batch(store, 0.1)
    torch.manual_seed(0)
    model = NucELForPreTraining(tiny_config()).eval()
    torch.manual_seed(1)
    output = model(**batch)
    w = batch["loss_weight"]
    masked = batch["labels"] != -100
    # generator: weighted mean of the cross-entropy at the masked positions
    log_p = torch.log_softmax(output.generator_logits.double(), -1)
    ce = -log_p[torch.arange(len(log_p)), batch["labels"][masked]]
    generator = (ce * w[masked].double()).sum() / w[masked].double().sum()
    # discriminator: weighted mean of the binary cross-entropy at every scored position
    scored = output.discriminator_labels != -100
    x, y = output.logits[scored].double(), output.discriminator_labels[scored].double()
    bce = torch.clamp(x, min=0) - x * y + torch.log1p(torch.exp(-x.abs()))
    discriminator = (bce * w[scored].double()).sum() / w[scored].double().sum()
    assert output.generator_loss.item() == pytest.approx(generator.item(), rel=1e-6)
    assert output.discriminator_loss.item() == pytest.approx(discriminator.item(), rel=1e-6)
    assert output.loss.item() == pytest.approx(generator.item() + 50.0 * discriminator.item(), rel=1e-6)
    # the weights matter: the plain mean differs
    assert abs(ce.mean().item() - generator.item()) > 1e-4
    # all-ones weights give the unweighted loss
    torch.manual_seed(1)
    plain = model(input_ids=batch["input_ids"], labels=batch["labels"])
    torch.manual_seed(1)
    ones = model(input_ids=batch["input_ids"], labels=batch["labels"], loss_weight=torch.ones_like(w))
    assert ones.loss.item() == pytest.approx(plain.loss.item(), rel=1e-6)


@pytest.mark.parametrize("sparse", [True, False])
def test_mlm_loss_is_the_hand_computed_weighted_mean(store, sparse):
    _, batch, _ = weighted_batch(store, 0.1)
    torch.manual_seed(0)
    model = NucELForMaskedLM(tiny_config(sparse_prediction=sparse)).eval()
    output = model(**batch)
    masked = batch["labels"] != -100
    logits = output.logits if sparse else output.logits[masked]
    log_p = torch.log_softmax(logits.double(), -1)
    ce = -log_p[torch.arange(len(log_p)), batch["labels"][masked]]
    w = batch["loss_weight"][masked].double()
    assert output.loss.item() == pytest.approx(((ce * w).sum() / w.sum()).item(), rel=1e-6)
    assert F.cross_entropy(logits.float(), batch["labels"][masked]).item() != pytest.approx(output.loss.item())


def test_a_corrupt_index_is_rebuilt_with_one_warning_and_a_ready_store_is_not_written(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa.gz", [("r", "ACGTacgt" * 50)])
    prepare_genome([fasta], tmp_path / "store", log=lambda *_: None)
    (tmp_path / "store" / "index.json").write_text('{"format_version": 2, "recor')
    messages = []
    prepare_genome([fasta], tmp_path / "store", log=messages.append)
    assert len([m for m in messages if m.startswith("warning:") and "rebuilding" in m]) == 1
    assert GenomeStore(tmp_path / "store").index["repeat_count"] == 200
    before = {path.name: path.stat().st_mtime_ns for path in (tmp_path / "store").iterdir()}
    os.chmod(tmp_path / "store", 0o555)  # a shared, read-only store: reused as it is
    try:
        messages = []
        prepare_genome([fasta], tmp_path / "store", log=messages.append)
        assert messages == [f"genome store {tmp_path / 'store'}: up to date (400 bp, 1 records)"]
    finally:
        os.chmod(tmp_path / "store", 0o755)
    assert {path.name: path.stat().st_mtime_ns for path in (tmp_path / "store").iterdir()} == before
