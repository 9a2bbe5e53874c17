"""NucEL models. Importing this package registers every class with the transformers Auto classes."""

import transformers
from transformers import AutoConfig

from . import modeling_nucel as _modeling
from .configuration_nucel import NucELConfig
from .modeling_nucel import (
    AUTO_MAP,
    HEADS,
    NucELForMaskedLM,
    NucELForPreTraining,
    NucELForPreTrainingOutput,
    NucELForReplacedTokenDetection,
    NucELForSequenceClassification,
    NucELForTokenClassification,
    NucELModel,
    NucELPreTrainedModel,
    NucELReplacedTokenDetectionOutput,
)

AutoConfig.register(NucELConfig.model_type, NucELConfig, exist_ok=True)
for _name, _auto, _, _ in HEADS:  # the one head table (modeling_nucel.HEADS)
    if _auto:
        getattr(transformers, _auto).register(NucELConfig, getattr(_modeling, _name), exist_ok=True)

__all__ = [
    "AUTO_MAP",
    "HEADS",
    "NucELConfig",
    "NucELPreTrainedModel",
    "NucELModel",
    "NucELForMaskedLM",
    "NucELForPreTraining",
    "NucELForPreTrainingOutput",
    "NucELForReplacedTokenDetection",
    "NucELReplacedTokenDetectionOutput",
    "NucELForSequenceClassification",
    "NucELForTokenClassification",
]
