"""Masking strategies: which tokens the generator must fill. Specials are never masked."""

import torch

from tokenization import alphabet


def uniform_mask(input_ids, rate, generator=None, mask_id=alphabet.MASK_ID, special_ids=alphabet.SPECIAL_IDS):
    """Each non-special token is selected with probability `rate` and replaced by [MASK] (ELECTRA's choice).

    Returns `(masked_input_ids, labels)` with MLM-convention labels: the original id where masked, -100 elsewhere.
    """
    maskable = ~torch.isin(input_ids, torch.tensor(special_ids, device=input_ids.device))
    draws = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    selected = maskable & (draws < rate)
    return input_ids.masked_fill(selected, mask_id), input_ids.masked_fill(~selected, -100)
