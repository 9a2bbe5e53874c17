"""NucEL models. Importing this package registers every class with the transformers Auto classes."""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from .configuration_nucel import NucELConfig
from .modeling_nucel import (
    AUTO_MAP,
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
for _auto_class, _model_class in (
    (AutoModel, NucELModel),
    (AutoModelForMaskedLM, NucELForMaskedLM),
    (AutoModelForPreTraining, NucELForReplacedTokenDetection),
    (AutoModelForSequenceClassification, NucELForSequenceClassification),
    (AutoModelForTokenClassification, NucELForTokenClassification),
):
    _auto_class.register(NucELConfig, _model_class, exist_ok=True)

__all__ = [
    "AUTO_MAP",
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
