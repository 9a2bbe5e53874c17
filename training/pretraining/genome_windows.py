"""Training windows over a genome store: fixed windows with overlap (or a plain stride), a random crop inside each,
N and repeat filtering, reverse-complement augmentation, a held-out validation split, rank sharding, and (for a
corpus of several genomes) an epoch order in which each genome fills its share of the batches.

The paper's recipe is the default: 1,224-bp windows overlapping by 100 bp, a random 1,024-bp crop in each.
Every random choice is a function of (seed, epoch, window index), so a run is reproducible and resumable. An epoch
serves `len(windows)` items; a mixture that serves a window twice in one epoch (an upweighted small genome) names
the second serving `index + len(windows)`, so its crop, strand and masks are drawn afresh.
"""

import numpy as np
import torch

from nucel.tokenization import alphabet
from nucel.tokenization.encoding import reverse_complement
from nucel.tokenization.token_layout import NATIVE

_GROUP = 8192  # windows whose N counts are computed from one cumulative sum (bounded memory on any genome)


def is_n(stored):
    return (stored & alphabet.TOKEN_BITS) == alphabet.N_ID


def is_repeat(stored):
    return (stored & alphabet.REPEAT_BIT) != 0


def count_in_windows(stored, starts, length, flagged=is_n):
    """How many bases of `stored[s:s+length]` (a store record's bytes) are `flagged`, for every start `s`
    (ascending)."""
    counts = np.empty(len(starts), dtype=np.int64)
    for first in range(0, len(starts), _GROUP):
        group = starts[first:first + _GROUP]
        lo, hi = int(group[0]), int(group[-1]) + length
        cumulative = np.concatenate(([0], np.cumsum(flagged(np.asarray(stored[lo:hi])), dtype=np.int64)))
        counts[first:first + len(group)] = cumulative[group - lo + length] - cumulative[group - lo]
    return counts


class GenomeWindows(torch.utils.data.Dataset):
    """Map-style dataset of `{"input_ids": LongTensor}` crops, `[CLS] crop [SEP]` by default; with `repeats=True`
    also `"repeats"` (BoolTensor, True at soft-masked bases, False at the special tokens).

    Split: `validation_records` (names) and `held_out_record_ids` are held out whole; `validation_fraction` holds
    out the last fraction of every other record as a region. Train windows end at or before the region's start and
    validation windows start at or after it, so no base is in both splits.
    Filters: windows with more than `max_n_fraction` N or more than `max_repeat_fraction` soft-masked bases are
    dropped (counted in `summary()`).
    Mixture: `genome_of_source` (a genome number per store source) gives each window its genome (`genome_ids`);
    a train split's `mixture` (corpus.Mixture, set once those windows are counted: build.build_data) makes the
    epoch order give each genome its share.
    """

    def __init__(self, store, split="train", window_length=1224, overlap=100, stride=None, crop_length=1024,
                 max_n_fraction=0.1, reverse_complement_prob=0.5, validation_records=(), validation_fraction=0.0,
                 seed=0, add_special_tokens=True, max_repeat_fraction=1.0, repeats=False, held_out_record_ids=(),
                 genome_of_source=None):
        if split not in ("train", "validation"):
            raise ValueError(f"GenomeWindows: split={split!r}: expected 'train' or 'validation'")
        stride = stride if stride is not None else window_length - overlap
        if not 0 < crop_length <= window_length:
            raise ValueError(f"GenomeWindows: crop_length={crop_length}: expected 1..window_length={window_length}")
        if stride < 1:
            raise ValueError(f"GenomeWindows: stride={stride} (window_length - overlap): expected at least 1")
        if not 0.0 <= validation_fraction < 1.0:
            raise ValueError(f"GenomeWindows: validation_fraction={validation_fraction}: expected a fraction in [0, 1)")
        for name, fraction in (("max_n_fraction", max_n_fraction), ("max_repeat_fraction", max_repeat_fraction)):
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(f"GenomeWindows: {name}={fraction}: expected a fraction in [0, 1]")
        names = {record["name"] for record in store.records}
        unknown = sorted(set(validation_records) - names)
        if unknown:
            raise ValueError(f"GenomeWindows: validation_records {unknown} are not records of {store.directory}")

        self.store, self.split, self.seed, self.epoch = store, split, seed, 0
        self.window_length, self.stride, self.crop_length = window_length, stride, crop_length
        self.reverse_complement_prob = reverse_complement_prob if split == "train" else 0.0
        self.add_special_tokens, self.repeats = add_special_tokens, repeats
        self.mixture = None  # validation keeps it: every held-out window, evenly

        held_out = {record_id for record_id, record in enumerate(store.records)
                    if record["name"] in validation_records} | set(held_out_record_ids)
        record_ids, window_starts, self.candidates, self.dropped_n, self.dropped_repeats = [], [], 0, 0, 0
        for record_id, record in enumerate(store.records):
            begin, end = self._region(record, record_id in held_out, validation_fraction)
            starts = np.arange(begin, end - window_length + 1, stride, dtype=np.int64)
            if len(starts) == 0:
                continue
            stored = store.record_bytes(record_id)
            keep_n = count_in_windows(stored, starts, window_length, is_n) <= max_n_fraction * window_length
            keep = keep_n
            if max_repeat_fraction < 1.0:
                keep = keep_n & (count_in_windows(stored, starts, window_length, is_repeat)
                                 <= max_repeat_fraction * window_length)
            self.candidates += len(starts)
            self.dropped_n += int((~keep_n).sum())
            self.dropped_repeats += int((keep_n & ~keep).sum())
            record_ids.append(np.full(int(keep.sum()), record_id, dtype=np.int32))
            window_starts.append(starts[keep])
        self.record_ids = np.concatenate(record_ids) if record_ids else np.zeros(0, dtype=np.int32)
        self.starts = np.concatenate(window_starts) if window_starts else np.zeros(0, dtype=np.int64)
        sources = np.array([record["source"] for record in store.records], dtype=np.int64)
        genome_of_source = np.zeros(len(store.index["sources"]), dtype=np.int64) if genome_of_source is None \
            else np.asarray(genome_of_source, dtype=np.int64)
        self.genome_ids = genome_of_source[sources[self.record_ids]]  # per window: which genome of a corpus

    def _region(self, record, held_out, validation_fraction):
        """[begin, end) of this record that belongs to this split."""
        if held_out:
            return (0, record["length"]) if self.split == "validation" else (0, 0)
        boundary = record["length"] - int(record["length"] * validation_fraction)
        return (0, boundary) if self.split == "train" else (boundary, record["length"])

    def __len__(self):
        return len(self.starts)

    def set_epoch(self, epoch):
        """The epoch `windows[i]` serves (the torch / accelerate convention); `sample(i, epoch)` takes it directly."""
        self.epoch = epoch

    def window(self, index, epoch=None):
        """(record_id, start, crop_offset, reverse_complemented) of window `index` in `epoch` (default: the set one).
        Crops and strands of epoch `e` differ from epoch `e-1` but are the same on every run. `index` may be a
        repeated serving (`index + k * len(self)`, see the module's docstring): the same window, drawn afresh."""
        window = index % len(self)
        if self.split == "validation":  # fixed: the same bases are scored at every evaluation
            return int(self.record_ids[window]), int(self.starts[window]), \
                (self.window_length - self.crop_length) // 2, False
        rng = np.random.default_rng((self.seed, self.epoch if epoch is None else epoch, index))
        offset = int(rng.integers(0, self.window_length - self.crop_length + 1))
        return (int(self.record_ids[window]), int(self.starts[window]), offset,
                bool(rng.random() < self.reverse_complement_prob))

    def sample(self, index, epoch):
        """Window `index` as served in `epoch`: {"input_ids": LongTensor} (+ "repeats": BoolTensor)."""
        record_id, start, offset, flip = self.window(index, epoch)
        ids, repeats = self.store.record_bases(record_id, start + offset, start + offset + self.crop_length)
        if flip:
            ids = reverse_complement(ids)
        ids = NATIVE.frame(ids) if self.add_special_tokens else ids.astype(np.int64)
        sample = {"input_ids": torch.from_numpy(ids)}
        if self.repeats:
            repeats = repeats[::-1] if flip else repeats
            if self.add_special_tokens:
                repeats = np.concatenate(([False], repeats, [False]))
            sample["repeats"] = torch.from_numpy(np.ascontiguousarray(repeats))
        return sample

    def __getitem__(self, index):
        return self.sample(index, self.epoch)

    def epoch_order(self, epoch, rank=0, world_size=1, shuffle=True):
        """Window indices for `rank` in `epoch`: one seeded order of the epoch (a permutation, or the mixture's)
        cut into disjoint, complete rank shards."""
        if not 0 <= rank < world_size:
            raise ValueError(f"epoch_order: rank={rank} outside world_size={world_size}")
        if self.mixture is not None and shuffle:
            order = self.mixture.epoch_order(self.genome_ids, self.seed, epoch)
        else:
            order = np.random.default_rng((self.seed, epoch)).permutation(len(self)) if shuffle \
                else np.arange(len(self))
        return order[rank::world_size]

    def summary(self):
        return {"split": self.split, "windows": len(self), "candidates": self.candidates,
                "dropped_for_n": self.dropped_n, "dropped_for_repeats": self.dropped_repeats,
                "tokens_per_window": self.crop_length + 2 * self.add_special_tokens}

    def to_hf_dataset(self, epoch=0, cache_dir=None):
        """This split at `epoch` as a `datasets.Dataset` (column `input_ids`), fingerprinted by store content and
        settings so a changed genome is never served from the cache."""
        import datasets  # noqa: PLC0415  (heavy, with pyarrow: only this export needs it, training reads windows)

        fingerprint = "-".join(str(part) for part in (
            "nucel-windows", self.store.checksum, self.split, self.window_length, self.stride, self.crop_length,
            len(self), self.reverse_complement_prob, self.seed, epoch))

        def rows():
            for i in range(len(self)):
                yield {"input_ids": self.sample(i, epoch)["input_ids"].tolist()}

        features = datasets.Features({"input_ids": datasets.Sequence(datasets.Value("uint8"))})
        return datasets.Dataset.from_generator(rows, features=features, cache_dir=cache_dir, fingerprint=fingerprint)


class ShardedWindows(torch.utils.data.IterableDataset):
    """One rank's share of an epoch as an IterableDataset (for loaders that do not shard themselves)."""

    def __init__(self, windows, rank=0, world_size=1, shuffle=True):
        self.windows, self.rank, self.world_size, self.shuffle, self.epoch = windows, rank, world_size, shuffle, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        order = self.windows.epoch_order(self.epoch, self.rank, self.world_size, self.shuffle)
        worker = torch.utils.data.get_worker_info()
        if worker is not None:  # dataloader workers split the rank's share further, still disjoint
            order = order[worker.id::worker.num_workers]
        for index in order:
            yield self.windows.sample(int(index), self.epoch)
