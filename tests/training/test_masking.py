"""training/pretraining/masking.py: realised rates, span-length distributions, the RandomMask curriculum, specials
never masked."""

import pytest
import torch

from nucel.tokenization import alphabet
from nucel.training.pretraining.masking import (
    Masker,
    RandomMaskCurriculum,
    geometric_lengths,
    lengths_at,
    span_mask,
    span_start_probability,
    uniform_lengths,
    uniform_mask,
)


def genome_like(rows=4, length=25_000, seed=0):
    """[CLS] ACGT with some N [SEP] rows."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(alphabet.A_ID, alphabet.T_ID + 1, (rows, length), generator=generator)
    ids[torch.rand(ids.shape, generator=generator) < 0.02] = alphabet.N_ID
    ids[:, 0], ids[:, -1] = alphabet.CLS_ID, alphabet.SEP_ID
    return ids


def runs(selected_row):
    """Lengths of the maximal runs of True in a 1-D bool tensor, with their start positions."""
    values = selected_row.int().tolist()
    found, start = [], None
    for i, value in enumerate(values + [0]):
        if value and start is None:
            start = i
        elif not value and start is not None:
            found.append((start, i - start))
            start = None
    return found


def check_labels(ids, masked, labels, mask_id=alphabet.MASK_ID):
    selected = labels != -100
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(masked[~selected], ids[~selected])
    return selected


@pytest.mark.parametrize("strategy", ["uniform", "span", "randommask"])
def test_realised_rate_and_specials_never_masked(strategy):
    ids = genome_like()
    masker = Masker(strategy, 0.15, total_steps=10)
    masked, labels = masker(ids, step=7, generator=torch.Generator().manual_seed(1))
    selected = check_labels(ids, masked, labels)
    maskable = (ids >= alphabet.A_ID) & (ids <= alphabet.T_ID)
    assert not selected[~maskable].any(), "a special token or N was masked"
    assert (masked[selected] == alphabet.MASK_ID).all()
    assert selected[maskable].float().mean().item() == pytest.approx(0.15, abs=0.01)


def test_bert_80_10_10_split():
    ids = genome_like(rows=8)
    masked, labels = uniform_mask(ids, 0.15, torch.Generator().manual_seed(2), bert_80_10_10=True)
    selected = check_labels(ids, masked, labels)
    as_mask = (masked == alphabet.MASK_ID) & selected
    kept = (masked == ids) & selected
    randomised = selected & ~as_mask & ~kept
    total = selected.sum().item()
    assert as_mask.sum().item() / total == pytest.approx(0.8, abs=0.01)
    # a random draw equal to the original counts as "kept": 10% + 10% x 1/4
    assert kept.sum().item() / total == pytest.approx(0.1 + 0.1 / 4, abs=0.01)
    assert randomised.sum().item() / total == pytest.approx(0.1 * 3 / 4, abs=0.01)
    assert torch.isin(masked[randomised], torch.tensor(alphabet.NUCLEOTIDE_IDS)).all()


def test_span_start_probability_gives_the_rate():
    for pmf in (geometric_lengths(3.0), uniform_lengths(6, 14)):
        p = span_start_probability(0.15, tuple(pmf.tolist()))
        survival = 1 - torch.cumsum(torch.cat([torch.zeros(1, dtype=pmf.dtype), pmf[:-1]]), 0)
        assert 1 - torch.prod(1 - p * survival).item() == pytest.approx(0.15, abs=1e-9)


def test_span_lengths_are_geometric():
    """At a low rate spans rarely touch, so masked runs follow the geometric law: mean 3, P(1) = 1/3."""
    ids = torch.full((1, 400_000), alphabet.A_ID)
    _, labels = span_mask(ids, 0.01, geometric_lengths(3.0), torch.Generator().manual_seed(3))
    lengths = torch.tensor([n for _, n in runs(labels[0] != -100)], dtype=torch.float)
    assert lengths.mean().item() == pytest.approx(3.0, rel=0.06)
    assert (lengths == 1).float().mean().item() == pytest.approx(1 / 3, abs=0.03)
    assert (labels[0] != -100).float().mean().item() == pytest.approx(0.01, rel=0.08)


def test_curriculum_phases():
    curriculum = RandomMaskCurriculum(total_steps=100, phases=5, min_span=6, growth=2)
    expected = {0: (6, 6), 19: (6, 6), 20: (6, 8), 45: (6, 10), 60: (6, 12), 99: (6, 14), 150: (6, 14)}
    for step, span_range in expected.items():
        assert curriculum.span_range(step) == span_range, step


@pytest.mark.parametrize("step,low,high", [(0, 6, 6), (40, 6, 10), (99, 6, 14)])
def test_randommask_spans_follow_the_phase(step, low, high):
    ids = torch.full((1, 300_000), alphabet.C_ID)
    masker = Masker("randommask", 0.02, total_steps=100)
    _, labels = masker(ids, step, torch.Generator().manual_seed(4))
    lengths = torch.tensor([n for _, n in runs(labels[0] != -100)])
    in_range = ((lengths >= low) & (lengths <= high)).float().mean().item()
    assert in_range > 0.95  # the rest are touching spans merged into one run
    assert lengths.min().item() == low
    if high > low:
        counts = torch.bincount(lengths[(lengths >= low) & (lengths <= high)] - low, minlength=high - low + 1)
        assert counts.min().item() > 0.5 * counts.float().mean().item(), "span lengths are not uniform in range"


def test_randommask_on_overlapping_kmer_tokens():
    """Usable with DNABERT-style 6-mers: specials kept, inner masked runs at least 6 tokens, so the base in the
    middle of a run is hidden from every k-mer that covers it."""
    from nucel.tokenization import load_tokenizer

    tokenizer = load_tokenizer("kmer", k=6, stride=1, model_max_length=30_000)
    sequence = "".join("ACGT"[i] for i in torch.randint(0, 4, (20_000,), generator=torch.Generator().manual_seed(5)))
    ids = torch.tensor(tokenizer(sequence)["input_ids"])
    kmer_ids = [i for i in range(len(tokenizer)) if i not in tokenizer.all_special_ids]
    masker = Masker("randommask", 0.15, total_steps=10, mask_id=tokenizer.mask_token_id,
                    unmaskable_ids=tokenizer.all_special_ids, replace_ids=kmer_ids, bert_80_10_10=True)
    masked, labels = masker(ids, step=9, generator=torch.Generator().manual_seed(6))
    selected = check_labels(ids, masked, labels)
    assert not selected[torch.isin(ids, torch.tensor(tokenizer.all_special_ids))].any()
    assert selected.float().mean().item() == pytest.approx(0.15, abs=0.03)
    inner = [n for start, n in runs(selected) if start + n < len(ids) - 1]
    assert inner and min(inner) >= 6


def test_same_generator_seed_same_mask():
    ids = genome_like(rows=1, length=2000)
    for strategy in ("uniform", "span", "randommask"):
        masker = Masker(strategy, 0.15, total_steps=10)
        first = masker(ids, 3, torch.Generator().manual_seed(9))
        second = masker(ids, 3, torch.Generator().manual_seed(9))
        assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


@pytest.mark.parametrize("kwargs,message", [
    (dict(strategy="bert", rate=0.15), "masking='bert': expected one of uniform, span, randommask"),
    (dict(strategy="uniform", rate=1.5), "mask_rate=1.5: expected a fraction in (0, 1)"),
    (dict(strategy="span", rate=0.15, span_mean_length=0.5), "span_mean_length=0.5: expected at least 1"),
    (dict(strategy="randommask", rate=0.15, randommask_phases=0), "phases=0"),
])
def test_bad_masking_settings(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Masker(**kwargs)


def test_span_lengths_are_searchsorted_bit_for_bit():
    """lengths_at replaces torch.searchsorted(right=True) (slow under contention) with the very same answers."""
    generator = torch.Generator().manual_seed(0)
    for size in (1, 3, 12, 40):
        cdf = torch.cumsum(torch.rand(size, generator=generator), 0)
        draws = torch.rand(8, 1026, generator=generator) * cdf[-1]
        draws[0, :size] = cdf  # draws exactly on the table's steps
        expected = torch.searchsorted(cdf, draws.contiguous(), right=True).clamp_max(size - 1) + 1
        assert torch.equal(lengths_at(cdf, draws), expected)
