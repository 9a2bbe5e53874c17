"""NucEL: ELECTRA-style single-nucleotide DNA encoders on a ModernBERT backbone, Hugging Face native.

`import nucel` gives the model classes (importing them registers NucEL with the transformers Auto classes) and
`__version__`. The rooms are `nucel.modeling_nucel`, `nucel.tokenization`, `nucel.training`, `nucel.inference`
and `nucel.hub_cards`; the modules directly under `nucel` are the plumbing every command shares.
"""

from nucel.modeling_nucel import (
    NucELConfig,
    NucELForMaskedLM,
    NucELForPreTraining,
    NucELForReplacedTokenDetection,
    NucELForSequenceClassification,
    NucELForTokenClassification,
    NucELModel,
    NucELPreTrainedModel,
)

__version__ = "0.1.0"

__all__ = ["NucELConfig", "NucELForMaskedLM", "NucELForPreTraining", "NucELForReplacedTokenDetection",
           "NucELForSequenceClassification", "NucELForTokenClassification", "NucELModel", "NucELPreTrainedModel",
           "__version__"]
