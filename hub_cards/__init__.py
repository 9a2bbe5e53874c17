"""Model cards for the Hub: rendering (`card`) and the Hub's metadata rules, checked locally (`metadata`)."""

from .card import (
    GUE_TASKS,
    PIPELINE_TAG_BY_CLASS,
    PROMOTER,
    benchmark_name,
    grid_baselines,
    pipeline_tag_for,
    render_card,
    task_examples,
    widget_examples,
)
from .metadata import CardMetadataError, check_metadata, metadata_problems

__all__ = ["CardMetadataError", "GUE_TASKS", "PIPELINE_TAG_BY_CLASS", "PROMOTER", "benchmark_name", "check_metadata",
           "grid_baselines", "metadata_problems", "pipeline_tag_for", "render_card", "task_examples",
           "widget_examples"]
