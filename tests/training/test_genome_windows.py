import numpy as np
import pytest
import torch
from conftest import write_fasta

from nucel.tokenization import alphabet, reverse_complement
from nucel.tokenization.genome_store import GenomeStore
from nucel.tokenization.prepare_genome import prepare_genome
from nucel.training.pretraining.genome_windows import GenomeWindows, ShardedWindows


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Known content: rec0 10,000 bp ACGT cycle with an all-N stretch at 3,000-4,999; rec1 2,500 bp; rec2 50 bp."""
    root = tmp_path_factory.mktemp("store")
    rng = np.random.default_rng(0)
    rec0 = "".join(rng.choice(list("ACGT"), 10_000))
    rec0 = rec0[:3_000] + "N" * 2_000 + rec0[5_000:]
    rec1 = "".join(rng.choice(list("ACGT"), 2_500))
    fasta = write_fasta(root / "g.fa.gz", [("rec0", rec0), ("rec1", rec1), ("rec2", "ACGT" * 12 + "AC")])
    prepare_genome([fasta], root / "store", log=lambda *_: None)
    return GenomeStore(root / "store")


def test_windows_cover_records_with_overlap_and_drop_n(store):
    windows = GenomeWindows(store, window_length=1_000, overlap=100, crop_length=800, max_n_fraction=0.1)
    starts = {(int(r), int(s)) for r, s in zip(windows.record_ids, windows.starts)}
    # stride 900: rec0 starts 0..9000 (10 windows) minus those >10% inside N 3000-4999; rec1 0, 900; rec2 too short
    rec0_all = [s for s in range(0, 9_001, 900)]
    rec0_kept = [s for s in rec0_all if max(0, min(s + 1_000, 5_000) - max(s, 3_000)) <= 100]
    assert starts == {(0, s) for s in rec0_kept} | {(1, 0), (1, 900)}
    assert windows.candidates == len(rec0_all) + 2 and windows.dropped_n == len(rec0_all) - len(rec0_kept)
    assert windows.summary() == {"split": "train", "windows": len(starts), "candidates": windows.candidates,
                                 "dropped_for_n": windows.dropped_n, "dropped_for_repeats": 0,
                                 "tokens_per_window": 802}


def test_items_are_crops_with_specials_and_rc(store):
    windows = GenomeWindows(store, window_length=1_000, overlap=100, crop_length=800, reverse_complement_prob=0.5)
    flips = 0
    for index in range(len(windows)):
        record_id, start, offset, flipped = windows.window(index)
        ids = windows[index]["input_ids"].numpy()
        assert ids[0] == alphabet.CLS_ID and ids[-1] == alphabet.SEP_ID and len(ids) == 802
        expected = np.asarray(store.record_tokens(record_id)[start + offset:start + offset + 800])
        assert np.array_equal(ids[1:-1], reverse_complement(expected) if flipped else expected)
        assert 0 <= offset <= 200
        flips += flipped
    assert 0 < flips < len(windows)


def test_deterministic_per_seed_and_epoch(store):
    def snapshot(seed, epoch):
        windows = GenomeWindows(store, window_length=1_000, crop_length=800, seed=seed)
        windows.set_epoch(epoch)
        return [windows.window(i) for i in range(len(windows))], windows.epoch_order(epoch).tolist()

    assert snapshot(1, 0) == snapshot(1, 0)
    assert snapshot(1, 0) != snapshot(1, 1)
    assert snapshot(1, 0) != snapshot(2, 0)


@pytest.mark.parametrize("world_size", [2, 3])
def test_rank_shards_are_disjoint_and_complete(store, world_size):
    windows = GenomeWindows(store, window_length=300, overlap=20, crop_length=256)
    shards = [windows.epoch_order(3, rank, world_size) for rank in range(world_size)]
    merged = np.concatenate(shards)
    assert len(merged) == len(set(merged.tolist())) == len(windows)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    streamed = [sum(1 for _ in ShardedWindows(windows, rank, world_size)) for rank in range(world_size)]
    assert streamed == [len(s) for s in shards]


def test_validation_split_is_disjoint_from_train(store):
    kwargs = dict(window_length=300, overlap=20, crop_length=256, validation_fraction=0.2)
    train = GenomeWindows(store, split="train", **kwargs)
    validation = GenomeWindows(store, split="validation", **kwargs)
    assert len(train) > 0 and len(validation) > 0

    def bases(windows):
        return {(int(r), p) for r, s in zip(windows.record_ids, windows.starts) for p in range(s, s + 300)}

    assert not bases(train) & bases(validation)
    by_record = GenomeWindows(store, split="validation", validation_records=["rec1"], window_length=300, overlap=20,
                              crop_length=256)
    assert set(by_record.record_ids.tolist()) == {1}
    assert 1 not in GenomeWindows(store, validation_records=["rec1"], window_length=300, overlap=20,
                                  crop_length=256).record_ids
    # validation crops are fixed (centre, forward strand) whatever the epoch
    validation.set_epoch(5)
    assert validation.window(0)[2:] == (22, False)


def test_bad_window_settings(store):
    with pytest.raises(ValueError, match="crop_length=2000"):
        GenomeWindows(store, window_length=1_000, crop_length=2_000)
    with pytest.raises(ValueError, match="validation_records \\['chrZ'\\]"):
        GenomeWindows(store, validation_records=["chrZ"])


def test_works_with_dataloader_and_datasets(store, tmp_path):
    windows = GenomeWindows(store, window_length=1_000, crop_length=800)
    batch = next(iter(torch.utils.data.DataLoader(windows, batch_size=4)))
    assert batch["input_ids"].shape == (4, 802) and batch["input_ids"].dtype == torch.long
    hf = windows.to_hf_dataset(epoch=0, cache_dir=str(tmp_path))
    assert len(hf) == len(windows)
    windows.set_epoch(0)
    assert hf[3]["input_ids"] == windows[3]["input_ids"].tolist()
