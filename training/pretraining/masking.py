"""Masking strategies: which tokens the generator (or the MLM head) must fill.

    uniform     every maskable token independently with probability `rate`
    span        contiguous spans with geometric lengths, at the same expected rate
    randommask  the RandomMask curriculum: span lengths uniform in [min_span, max_span], where max_span grows by 2
                per phase of the run (min 6 for overlapping 6-mers, so a masked base is never visible in a
                neighbouring k-mer)

Every function takes token ids of any shape (the last dimension is the sequence) and returns
`(masked_input_ids, labels)` with MLM-convention labels: the original id where selected, -100 elsewhere.
Special tokens (and N, by default) are never selected. Randomness comes only from the `generator` argument, so a
caller that seeds it per sample gets the same masks on any number of processes and after a resume.
"""

import functools
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch

from nucel.tokenization import alphabet

STRATEGIES = ("uniform", "span", "randommask")
UNMASKABLE_IDS = alphabet.SPECIAL_IDS + (alphabet.N_ID,)
Masked = Tuple[torch.Tensor, torch.Tensor]  # (masked_input_ids, labels), both shaped like input_ids


def _maskable(input_ids: torch.Tensor, unmaskable_ids: Sequence[int]) -> torch.Tensor:
    return ~torch.isin(input_ids, torch.tensor(unmaskable_ids, device=input_ids.device))


def _apply(input_ids: torch.Tensor, selected: torch.Tensor, generator: Optional[torch.Generator], mask_id: int,
           replace_ids: Sequence[int], bert_80_10_10: bool) -> Masked:
    """[MASK] at every selected position; with `bert_80_10_10`, 10% get a random token from `replace_ids` and
    10% keep the original (BERT's recipe). Labels are the originals at every selected position either way."""
    labels = input_ids.masked_fill(~selected, -100)
    if not bert_80_10_10:
        return input_ids.masked_fill(selected, mask_id), labels
    draws = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    choices = torch.tensor(replace_ids, device=input_ids.device)
    random_ids = choices[torch.randint(len(replace_ids), input_ids.shape, generator=generator,
                                       device=input_ids.device)]
    masked = torch.where(selected & (draws < 0.8), mask_id, input_ids)
    masked = torch.where(selected & (draws >= 0.8) & (draws < 0.9), random_ids, masked)
    return masked, labels


def uniform_mask(input_ids: torch.Tensor, rate: float, generator: Optional[torch.Generator] = None,
                 mask_id: int = alphabet.MASK_ID, unmaskable_ids: Sequence[int] = UNMASKABLE_IDS,
                 bert_80_10_10: bool = False, replace_ids: Sequence[int] = alphabet.NUCLEOTIDE_IDS) -> Masked:
    """Each maskable token is selected with probability `rate`."""
    draws = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    selected = _maskable(input_ids, unmaskable_ids) & (draws < rate)
    return _apply(input_ids, selected, generator, mask_id, replace_ids, bert_80_10_10)


@functools.lru_cache(maxsize=64)
def span_start_probability(rate: float, length_pmf: Tuple[float, ...]) -> float:
    """Probability that a span starts at a position so that a position is covered with probability `rate`.

    A position is left uncovered when no span starting k positions earlier reaches it, for every k:
    P(uncovered) = prod_k (1 - p * P(L > k)). Solved for p by bisection (it is monotone in p)."""
    survival, remaining = [], 1.0
    for probability in length_pmf:  # length_pmf[i] = P(L = i + 1)
        survival.append(remaining)
        remaining -= probability
    survival = torch.tensor(survival, dtype=torch.float64)

    def coverage(p: float) -> float:
        return 1.0 - float(torch.prod(1.0 - p * survival))

    low, high = 0.0, 1.0
    if coverage(high) < rate:
        raise ValueError(f"span masking: rate={rate} is unreachable with spans of mean length "
                         f"{float(survival.sum()):.1f}")
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if coverage(middle) < rate else (low, middle)
    return (low + high) / 2


def expected_mask_fraction(rate: float, length_pmf: Union[torch.Tensor, Sequence[float]],
                           sequence_length: int) -> float:
    """The share of `sequence_length` maskable tokens that span masking at `rate` covers on average: below `rate`
    because positions near the start can only be reached by spans that start inside the sequence."""
    if isinstance(length_pmf, torch.Tensor):
        length_pmf = tuple(length_pmf.tolist())
    p = span_start_probability(rate, tuple(length_pmf))
    survival = 1.0 - torch.cumsum(torch.tensor((0.0,) + tuple(length_pmf[:-1]), dtype=torch.float64), 0)
    log_uncovered = torch.cumsum(torch.log1p(-p * survival), 0)  # position i: spans starting 0..i before it
    positions = torch.arange(sequence_length).clamp_max(len(length_pmf) - 1)
    return float(1.0 - torch.exp(log_uncovered[positions]).mean())


def lengths_at(cdf: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """Span length (1-based index into the length table) of each draw from the table's unnormalised `cdf`: how many
    CDF entries the draw reaches, as `searchsorted(cdf, draws, right=True)` gives, which stalls for milliseconds per
    call under torch's intra-op threads when another process holds a core (benchmarks/data_path.py)."""
    return (draws.unsqueeze(-1) >= cdf).sum(-1).clamp_max(len(cdf) - 1) + 1


def span_mask(input_ids: torch.Tensor, rate: float, span_lengths: torch.Tensor,
              generator: Optional[torch.Generator] = None, mask_id: int = alphabet.MASK_ID,
              unmaskable_ids: Sequence[int] = UNMASKABLE_IDS, bert_80_10_10: bool = False,
              replace_ids: Sequence[int] = alphabet.NUCLEOTIDE_IDS) -> Masked:
    """Contiguous spans: a span starts at each maskable position with the probability that makes the expected
    masked fraction `rate`; its length is drawn from `span_lengths` (a 1-D tensor of probabilities,
    `span_lengths[i] = P(length = i + 1)`). Spans may overlap and run past special tokens, which stay unmasked.
    """
    maskable = _maskable(input_ids, unmaskable_ids)
    start_probability = span_start_probability(rate, tuple(span_lengths.tolist()))
    shape, device = input_ids.shape, input_ids.device
    starts = maskable & (torch.rand(shape, generator=generator, device=device) < start_probability)
    # Inverse-CDF draw of one length per position (only the starts' lengths are used).
    cdf = torch.cumsum(span_lengths, 0).to(device=device, dtype=torch.float32)
    draws = torch.rand(shape, generator=generator, device=device) * cdf[-1]
    lengths = lengths_at(cdf, draws)
    # A position is covered if some span started at or before it and reaches past it: the running maximum of
    # span ends (start + length) along the sequence is greater than the position.
    positions = torch.arange(shape[-1], device=device).expand(shape)
    ends = torch.where(starts, positions + lengths, 0)
    selected = maskable & (torch.cummax(ends, dim=-1).values > positions)
    return _apply(input_ids, selected, generator, mask_id, replace_ids, bert_80_10_10)


def geometric_lengths(mean_length: float, max_length: Optional[int] = None) -> torch.Tensor:
    """P(length = 1, 2, ...) of a geometric distribution with mean `mean_length`, truncated at `max_length`
    (default 10x the mean) and renormalised."""
    if mean_length < 1:
        raise ValueError(f"span masking: span_mean_length={mean_length}: expected at least 1")
    max_length = max_length or max(1, math.ceil(10 * mean_length))
    q = 1.0 - 1.0 / mean_length
    pmf = torch.tensor([(1 - q) * q ** i for i in range(max_length)], dtype=torch.float64)
    return pmf / pmf.sum()


def uniform_lengths(min_length: int, max_length: int) -> torch.Tensor:
    """P(length = 1, 2, ...) uniform on [min_length, max_length]."""
    if not 1 <= min_length <= max_length:
        raise ValueError(f"span masking: span lengths [{min_length}, {max_length}]: expected 1 <= min <= max")
    pmf = torch.zeros(max_length, dtype=torch.float64)
    pmf[min_length - 1:] = 1.0 / (max_length - min_length + 1)
    return pmf


class RandomMaskCurriculum:
    """RandomMask: `total_steps` cut into `phases`; in phase p, span lengths are uniform on
    [min_span, min_span + growth * p] (6, 8, 10, 12, 14 tokens with the defaults)."""

    def __init__(self, total_steps: int, phases: int = 5, min_span: int = 6, growth: int = 2) -> None:
        if phases < 1 or min_span < 1 or growth < 0 or total_steps < 1:
            raise ValueError(f"randommask: phases={phases}, min_span={min_span}, growth={growth}, "
                             f"total_steps={total_steps}: expected phases>=1, min_span>=1, growth>=0, steps>=1")
        self.total_steps, self.phases, self.min_span, self.growth = total_steps, phases, min_span, growth

    def phase(self, step: int) -> int:
        return min(self.phases - 1, step * self.phases // self.total_steps)

    def span_range(self, step: int) -> Tuple[int, int]:
        """(min, max) span length at optimizer step `step` (0-based)."""
        return self.min_span, self.min_span + self.growth * self.phase(step)


class Masker:
    """The configured strategy as one callable: `masker(input_ids, step, generator) -> (masked, labels)`."""

    def __init__(self, strategy: str, rate: float, total_steps: int = 1, bert_80_10_10: bool = False,
                 span_mean_length: float = 3.0, randommask_phases: int = 5, randommask_min_span: int = 6,
                 randommask_growth: int = 2, mask_id: int = alphabet.MASK_ID,
                 unmaskable_ids: Sequence[int] = UNMASKABLE_IDS,
                 replace_ids: Sequence[int] = alphabet.NUCLEOTIDE_IDS) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"masking={strategy!r}: expected one of {', '.join(STRATEGIES)}")
        if not 0.0 < rate < 1.0:
            raise ValueError(f"mask_rate={rate}: expected a fraction in (0, 1)")
        self.strategy, self.rate = strategy, rate
        self.options = dict(mask_id=mask_id, unmaskable_ids=tuple(unmaskable_ids), bert_80_10_10=bert_80_10_10,
                            replace_ids=tuple(replace_ids))
        self.geometric = geometric_lengths(span_mean_length) if strategy == "span" else None
        self.curriculum = RandomMaskCurriculum(total_steps, randommask_phases, randommask_min_span,
                                               randommask_growth) if strategy == "randommask" else None

    def span_length_distributions(self) -> List[Tuple[int, torch.Tensor]]:
        """(first step, span-length pmf) of every distinct span distribution this masker uses; none for uniform."""
        if self.strategy == "span":
            return [(0, self.geometric)]
        if self.strategy == "randommask":
            total, phases = self.curriculum.total_steps, self.curriculum.phases
            firsts = sorted(step for step in {-(-phase * total // phases) for phase in range(phases)} if step < total)
            return [(step, uniform_lengths(*self.curriculum.span_range(step))) for step in firsts]
        return []

    def __call__(self, input_ids: torch.Tensor, step: int = 0, generator: Optional[torch.Generator] = None) -> Masked:
        if self.strategy == "uniform":
            return uniform_mask(input_ids, self.rate, generator, **self.options)
        if self.strategy == "span":
            return span_mask(input_ids, self.rate, self.geometric, generator, **self.options)
        return span_mask(input_ids, self.rate, uniform_lengths(*self.curriculum.span_range(step)), generator,
                         **self.options)
