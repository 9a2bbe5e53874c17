"""Cut a sequence longer than the model's window into overlapping windows, and weight them so that every base
counts exactly once when the windows' outputs are stitched back together.

Each base belongs to the window whose centre is nearest: inside an overlap, the first half goes to the left
window and the second half to the right one (a base exactly on the midpoint is shared 0.5/0.5). Bases near a
window's edge, which see the least context, are thus taken from the neighbour that sees them best.

The tiling is mirror-symmetric: tiling a sequence of length L and reversing it gives the same windows as tiling
its reverse complement, so averaging the two strands (`reverse_complement_average`) is exactly strand-symmetric.
"""

import math
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np


@dataclass(frozen=True)
class Window:
    start: int  # 0-based, half-open, in record coordinates
    end: int
    weights: np.ndarray  # (end - start,) float32: this window's share of each base; the shares of a base sum to 1


def window_starts(length: int, window: int, overlap: int) -> List[Tuple[int, int]]:
    """(start, end) of each window: the fewest windows of at most `window` bases that overlap by at least
    `overlap`, spread evenly and mirror-symmetrically over `length` bases."""
    if length <= window:
        return [(0, length)]
    stride = window - overlap - 1  # one base of slack: rounding below may shift a window by one
    if stride < 1:
        raise ValueError(f"overlap {overlap} must be at least 2 smaller than the window ({window})")
    slack = length - window
    count = math.ceil(slack / stride) + 1
    spans = [None] * count
    for i in range(count // 2):
        start = (i * slack) // (count - 1)
        spans[i] = (start, start + window)
        spans[count - 1 - i] = (length - start - window, length - start)
    if count % 2:  # the middle window is centred: one base shorter when it cannot be centred at full size
        size = window - (slack % 2)
        start = (length - size) // 2
        spans[count // 2] = (start, start + size)
    return spans


def tile(length: int, window: int, overlap: int) -> List[Window]:
    """The windows of a `length`-base sequence, with the share each window takes of each of its bases."""
    spans = window_starts(length, window, overlap)
    tiles = []
    for i, (start, end) in enumerate(spans):
        weights = np.ones(end - start, dtype=np.float32)
        # Twice the coordinates of base centres (2p + 1) against twice each midpoint keeps the split exact.
        centres2 = 2 * np.arange(start, end) + 1
        if i > 0:  # overlap with the left neighbour: bases left of the midpoint are the neighbour's
            midpoint2 = start + spans[i - 1][1]
            weights[centres2 < midpoint2] = 0.0
            weights[centres2 == midpoint2] = 0.5
        if i < len(spans) - 1:
            midpoint2 = spans[i + 1][0] + end
            weights[centres2 > midpoint2] = 0.0
            weights[centres2 == midpoint2] = 0.5
        tiles.append(Window(start, end, weights))
    return tiles
