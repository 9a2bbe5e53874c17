"""Model cards for the Hub: rendering (`card`) and the Hub's metadata rules, checked locally (`metadata`)."""

from .card import PIPELINE_TAG_BY_CLASS, PROMOTER, pipeline_tag_for, render_card, widget_examples
from .metadata import CardMetadataError, check_metadata, metadata_problems

__all__ = ["CardMetadataError", "PIPELINE_TAG_BY_CLASS", "PROMOTER", "check_metadata", "metadata_problems",
           "pipeline_tag_for", "render_card", "widget_examples"]
