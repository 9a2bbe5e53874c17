"""Model cards for the Hub: rendering (`card`) and the Hub's metadata rules, checked locally (`metadata`)."""

from nucel.run_directory import register_run_kind

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

# An assembled Hub folder written before markers existed: its card beside its config.
register_run_kind("publish", "a Hub folder", (("README.md", "config.json"),))
register_run_kind("convert", "a converted model (nucel-convert)")
