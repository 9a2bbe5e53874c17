"""The Hub's rules for model-card metadata, checked locally (the Hub's own validator needs the network).

Sources: the Hub model-card spec (huggingface_hub's `modelcard_template.md` header and the "Model Cards" docs):
known pipeline tags (huggingface.js `PIPELINE_DATA`), license identifiers (the Hub's license list), widget
entries, and the `model-index` schema (name; results of task / dataset / metrics).
"""

import math
import numbers

from huggingface_hub.repocard_data import model_index_to_eval_results

from nucel.files import HUB_ID

# Every pipeline tag the Hub knows (not the tags of NucEL's heads: modeling_nucel.PIPELINE_TAGS).
HUB_PIPELINE_TAGS = frozenset({
    "text-classification", "token-classification", "table-question-answering", "question-answering",
    "zero-shot-classification", "translation", "summarization", "feature-extraction", "text-generation",
    "text2text-generation", "fill-mask", "sentence-similarity", "text-ranking", "text-to-speech", "text-to-audio",
    "automatic-speech-recognition", "audio-to-audio", "audio-classification", "audio-text-to-text",
    "voice-activity-detection", "depth-estimation", "image-classification", "object-detection",
    "image-segmentation", "text-to-image", "image-to-text", "image-to-image", "image-to-video",
    "unconditional-image-generation", "video-classification", "reinforcement-learning", "robotics",
    "tabular-classification", "tabular-regression", "tabular-to-text", "table-to-text", "multiple-choice",
    "text-retrieval", "time-series-forecasting", "text-to-video", "image-text-to-text",
    "visual-question-answering", "document-question-answering", "zero-shot-image-classification", "graph-ml",
    "mask-generation", "zero-shot-object-detection", "text-to-3d", "image-to-3d", "image-feature-extraction",
    "video-text-to-text", "keypoint-detection", "visual-document-retrieval", "any-to-any", "video-to-video",
    "other",
})

LICENSES = frozenset({
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0",
    "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0",
    "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
    "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0",
    "etalab-2.0", "eupl-1.1", "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1",
    "lgpl-3.0", "isc", "h-research", "intel-research", "lppl-1.3c", "ms-pl", "apple-ascl", "apple-amlr",
    "mpl-2.0", "odc-by", "odbl", "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib",
    "pddl", "lgpl-lr", "deepfloyd-if-license", "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4",
    "gemma", "unknown", "other",
})

# Keys a text widget entry may carry (the Hub ignores nothing silently: an unknown key is a typo).
WIDGET_KEYS = frozenset({"text", "example_title", "output", "context", "group"})
MODEL_INDEX_DATASET_KEYS = frozenset({"type", "name", "config", "split", "revision", "args"})
MODEL_INDEX_METRIC_KEYS = frozenset({"type", "value", "name", "config", "args", "verified", "verifyToken"})


class CardMetadataError(ValueError):
    """Card metadata the Hub would reject; the message lists every problem."""


def _string_list(value):
    values = [value] if isinstance(value, str) else value
    return isinstance(values, list) and all(isinstance(v, str) and v.strip() for v in values)


def _check_widget(widget, pipeline_tag, mask_token):
    if not isinstance(widget, list) or not widget:
        return ["widget: expected a non-empty list of examples"]
    problems = []
    for i, example in enumerate(widget):
        where = f"widget[{i}]"
        if not isinstance(example, dict):
            problems.append(f"{where}: expected a mapping with a 'text' key, got {type(example).__name__}")
            continue
        unknown = set(example) - WIDGET_KEYS
        if unknown:
            problems.append(f"{where}: unknown key(s) {sorted(unknown)} (known: {sorted(WIDGET_KEYS)})")
        text = example.get("text")
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{where}.text: expected a non-empty string")
        elif pipeline_tag == "fill-mask" and mask_token not in text:
            problems.append(f"{where}.text: a fill-mask example must contain the mask token {mask_token}")
        if "example_title" in example and not isinstance(example["example_title"], str):
            problems.append(f"{where}.example_title: expected a string")
    return problems


def _check_model_index(model_index):
    if not isinstance(model_index, list) or not model_index:
        return ["model-index: expected a non-empty list of models"]
    problems = []
    for i, entry in enumerate(model_index):
        where = f"model-index[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            problems.append(f"{where}.name: expected a non-empty string")
            continue
        results = entry.get("results")
        if not isinstance(results, list) or not results:
            problems.append(f"{where}.results: expected a non-empty list")
            continue
        for j, result in enumerate(results):
            at = f"{where}.results[{j}]"
            if not isinstance(result, dict):
                problems.append(f"{at}: expected a mapping of task, dataset and metrics")
                continue
            task, dataset, metrics = result.get("task"), result.get("dataset"), result.get("metrics")
            if not isinstance(task, dict) or task.get("type") not in HUB_PIPELINE_TAGS:
                problems.append(f"{at}.task.type: expected a Hub task id (a pipeline tag), got "
                                f"{(task or {}).get('type') if isinstance(task, dict) else task!r}")
            if not isinstance(dataset, dict):
                problems.append(f"{at}.dataset: expected a mapping with type and name")
            else:
                for key in ("type", "name"):
                    if not isinstance(dataset.get(key), str) or not dataset[key].strip():
                        problems.append(f"{at}.dataset.{key}: expected a non-empty string")
                if set(dataset) - MODEL_INDEX_DATASET_KEYS:
                    problems.append(f"{at}.dataset: unknown key(s) {sorted(set(dataset) - MODEL_INDEX_DATASET_KEYS)}")
            if not isinstance(metrics, list) or not metrics:
                problems.append(f"{at}.metrics: expected a non-empty list")
                continue
            for k, metric in enumerate(metrics):
                mt = f"{at}.metrics[{k}]"
                if not isinstance(metric, dict) or not isinstance(metric.get("type"), str) or not metric["type"]:
                    problems.append(f"{mt}.type: expected a non-empty string")
                    continue
                value = metric.get("value")
                if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)) or (
                        isinstance(value, numbers.Real) and not math.isfinite(value)):
                    problems.append(f"{mt}.value: expected a finite number, got {value!r}")
                if set(metric) - MODEL_INDEX_METRIC_KEYS:
                    problems.append(f"{mt}: unknown key(s) {sorted(set(metric) - MODEL_INDEX_METRIC_KEYS)}")
    if not problems:
        try:  # and huggingface_hub itself must be able to read it back
            model_index_to_eval_results(model_index)
        except (KeyError, TypeError, ValueError) as failure:
            problems.append(f"model-index: huggingface_hub cannot parse it ({failure!r})")
    return problems


def metadata_problems(metadata, mask_token="[MASK]"):
    """Every way `metadata` (the card's YAML header as a dict) breaks the Hub's rules; [] when it is valid."""
    problems = []
    if not isinstance(metadata, dict):
        return [f"metadata: expected a mapping, got {type(metadata).__name__}"]
    if "library_name" in metadata and (not isinstance(metadata["library_name"], str) or not metadata["library_name"]):
        problems.append("library_name: expected a non-empty string")
    tag = metadata.get("pipeline_tag")
    if tag is not None and tag not in HUB_PIPELINE_TAGS:
        problems.append(f"pipeline_tag: {tag!r} is not a Hub pipeline tag")
    licence = metadata.get("license")
    if licence is not None:
        if licence not in LICENSES:
            problems.append(f"license: {licence!r} is not a Hub license id (e.g. mit, apache-2.0, cc-by-4.0, other)")
        elif licence == "other" and not (metadata.get("license_name") and metadata.get("license_link")):
            problems.append("license: 'other' needs license_name and license_link")
    for key in ("tags", "datasets", "language", "base_model"):
        if key in metadata and not _string_list(metadata[key]):
            problems.append(f"{key}: expected a string or a list of non-empty strings")
        elif key == "base_model" and key in metadata:
            local = [name for name in ([metadata[key]] if isinstance(metadata[key], str) else metadata[key])
                     if not HUB_ID.match(name)]
            if local:
                problems.append(f"base_model: {local[0]!r} is not a Hub model id (ORG/NAME); a base that is not "
                                "on the Hub is described in the card's text, not in base_model")
    if "widget" in metadata:
        problems += _check_widget(metadata["widget"], tag, mask_token)
    if "model-index" in metadata:
        problems += _check_model_index(metadata["model-index"])
    return problems


def check_metadata(metadata, mask_token="[MASK]"):
    """Raise CardMetadataError naming every problem, or return the metadata unchanged."""
    problems = metadata_problems(metadata, mask_token)
    if problems:
        raise CardMetadataError("model card metadata: " + "; ".join(problems))
    return metadata
