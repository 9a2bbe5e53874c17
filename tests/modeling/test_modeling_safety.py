"""The model's forward refuses what would give a silent wrong result: all-padding rows and ids outside the
vocabulary."""

import pytest
import torch
from conftest import dna_batch, tiny_config


def test_empty_rows_and_ids_outside_the_vocabulary_are_clear_errors():
    from nucel.modeling_nucel import NucELForPreTraining, NucELForSequenceClassification

    ids, mask = dna_batch(lengths=[20, 12], length=20)
    mask[1] = 0
    with pytest.raises(ValueError, match=r"attention_mask row\(s\) \[1\] are all zeros"):
        NucELForSequenceClassification(tiny_config(classifier_pooling="mean"))(ids, attention_mask=mask)
    with pytest.raises(ValueError, match=r"attention_mask row\(s\) \[1\] are all zeros"):
        NucELForPreTraining(tiny_config())(ids, attention_mask=mask, labels=torch.full_like(ids, -100))
    ids[0, 3] = 42
    with pytest.raises(ValueError, match=r"token id 42, outside the vocabulary of 16 \(ids 0..15\)"):
        NucELForSequenceClassification(tiny_config())(ids)
