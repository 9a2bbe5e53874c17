"""Masked pretraining batches: genome windows -> per-sample deterministic masking -> stacked tensors.

Item k of `MaskedWindowBatches` is this rank's k-th micro-batch. Which windows it holds and how they are masked
depend only on (seed, epoch, window index) and the optimizer step, never on the process count or on what ran
before, so:
- a resumed run starting at micro-batch k sees exactly the batches an uninterrupted run would;
- N processes with per-device batch B see, at every step, the same global batch as one process with batch N x B.
"""

import numpy as np
import torch


def sample_generator(seed, *keys):
    """A torch.Generator seeded from (seed, *keys) through numpy's SeedSequence (well mixed, order-sensitive)."""
    state = np.random.SeedSequence((seed, *keys)).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def mask_windows(windows, indices, masker, step, seed, stream, epoch=0, repeat_weight=None):
    """Stack the windows `indices` of `epoch` and mask each sample with its own generator (seed, stream, epoch,
    i). With `repeat_weight` (windows that carry "repeats"): also `loss_weight`, `repeat_weight` at soft-masked
    positions and 1 elsewhere (the models weight both losses by it)."""
    inputs, labels, weights = [], [], []
    for index in indices:
        sample = windows.sample(int(index), epoch)
        masked, label = masker(sample["input_ids"], step, sample_generator(seed, stream, epoch, int(index)))
        inputs.append(masked)
        labels.append(label)
        if repeat_weight is not None:
            weights.append(torch.where(sample["repeats"], repeat_weight, 1.0))
    batch = {"input_ids": torch.stack(inputs), "labels": torch.stack(labels)}
    if repeat_weight is not None:
        batch["loss_weight"] = torch.stack(weights)
    return batch


class MaskedWindowBatches(torch.utils.data.Dataset):
    """Map-style: item k = micro-batch k of `rank` (k counts across epochs). Read it through `batch_loader`."""

    TRAIN_STREAM = 0

    def __init__(self, windows, masker, batch_size, accumulation_steps, total_steps, rank=0, world_size=1, seed=0,
                 repeat_weight=None):
        per_step = batch_size * world_size * accumulation_steps
        self.batches_per_epoch = len(windows) // per_step * accumulation_steps
        if self.batches_per_epoch == 0:
            raise ValueError(f"training windows: {len(windows)} windows are fewer than one global batch of "
                             f"{per_step}; use more sequence or a smaller global_batch_size")
        self.windows, self.masker, self.batch_size = windows, masker, batch_size
        self.accumulation_steps, self.total_steps = accumulation_steps, total_steps
        self.rank, self.world_size, self.seed, self.repeat_weight = rank, world_size, seed, repeat_weight
        self.items_per_epoch = self.batches_per_epoch * batch_size * world_size  # all ranks' windows in an epoch
        self._order_epoch, self._order = None, None

    def __len__(self):
        return self.total_steps * self.accumulation_steps

    def __getitem__(self, k):
        epoch, position = divmod(k, self.batches_per_epoch)
        if epoch != self._order_epoch:  # one permutation per epoch (per worker)
            self._order = self.windows.epoch_order(epoch, self.rank, self.world_size)
            self._order_epoch = epoch
        indices = self._order[position * self.batch_size:(position + 1) * self.batch_size]
        return mask_windows(self.windows, indices, self.masker, k // self.accumulation_steps, self.seed,
                            self.TRAIN_STREAM, epoch, self.repeat_weight)


def batch_loader(batches, num_workers, pin_memory, seed, first=0):
    """The DataLoader a run reads `batches` (MaskedWindowBatches) through, from micro-batch `first` on; workers
    build batches ahead. It has its own seed source: creating its iterator must not draw from the global RNG,
    which a resume has just restored."""
    return torch.utils.data.DataLoader(batches, batch_size=None, num_workers=num_workers,
                                       sampler=range(first, len(batches)), pin_memory=pin_memory,
                                       generator=torch.Generator().manual_seed(seed))


def validation_batches(windows, masker, batch_size, num_batches, step, seed):
    """A fixed validation subset: `num_batches` batches of windows spread evenly over the whole split, masked the
    same way at every evaluation (`step` only matters for the RandomMask curriculum)."""
    count = min(len(windows), batch_size * num_batches)
    indices = np.unique(np.linspace(0, len(windows) - 1, count).round().astype(np.int64))
    return [mask_windows(windows, indices[i:i + batch_size], masker, step, seed, stream=1)
            for i in range(0, len(indices), batch_size)]
