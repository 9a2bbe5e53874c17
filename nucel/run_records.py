"""The records rooms hand each other, read back with everything their readers use checked: a fine-tuning
`results.json` (with the under-trained mark of its cell), a pretraining run's `pretraining_summary.json`, and the
`conversion.json` nucel-convert writes beside imported weights. Writers live in their rooms; readers live here so
that the benchmark table, the study report and the model card read a record one way.
"""

from nucel.files import read_json_object

UNDER_TRAINED_MARK = "†"
UNDER_TRAINED_NOTE = (f"{UNDER_TRAINED_MARK}: at least one seed reached its maximum while dev was still improving "
                      "(the early-stopping rule had not fired): an under-trained number, not what the model can do.")


def read_json(path, required=(), kind="JSON file"):
    return read_json_object(path, kind, required)


# What the card reads from training/finetune.py's results.json and training/pretrain.py's summary.
RESULTS_KEYS = ("task", "label_type", "label_names", "primary_metric", "model", "config", "data", "seeds", "test")
RESULTS_CONFIG_KEYS = ("lr", "batch_size", "warmup_steps", "eval_steps")
PRETRAINING_KEYS = ("config", "genome", "steps", "tokens_seen")


def read_results(path):
    """A fine-tuning results.json with everything the card and the benchmark table use."""
    kind = "fine-tuning results (the results.json nucel finetune writes)"
    results = read_json(path, RESULTS_KEYS, kind)
    summary = results["test"].get(results["primary_metric"]) if isinstance(results["test"], dict) else None
    if not isinstance(summary, dict) or not {"mean", "sd", "n"} <= set(summary):
        raise ValueError(f"{path}: {kind} without test.{results['primary_metric']} (mean, sd, n)")
    missing = [key for key in RESULTS_CONFIG_KEYS if key not in (results["config"] or {})]
    if missing or not isinstance(results["seeds"], list) or not results["seeds"]:
        raise ValueError(f"{path}: {kind} without config key(s) {missing} or per-seed records")
    return results


CONVERSION_FILE = "conversion.json"  # nucel-convert's record of imported weights


def read_conversion(path):
    """conversion.json, written by nucel-convert beside weights it imported (and carried on by fine-tuning)."""
    return read_json(path, ("source", "revision", "license", "format"), "conversion record (nucel convert)")


def read_pretraining_summary(path):
    summary = read_json(path, PRETRAINING_KEYS, "pretraining summary (nucel pretrain)")
    if not isinstance(summary["genome"], dict) or not {"sources", "total_length", "checksum"} <= set(summary["genome"]):
        raise ValueError(f"{path}: pretraining summary without genome sources, total_length and checksum")
    return summary


def under_trained_seeds(results):
    """Seeds of a fine-tuning results.json that reached their maximum while dev was still improving (results
    written before stopping was recorded count as unknown: an empty list)."""
    return [record["seed"] for record in results.get("seeds", [])
            if (record.get("stopping") or {}).get("still_improving")]


def mark(results):
    """The table mark of a results.json's cell: UNDER_TRAINED_MARK or ''."""
    return UNDER_TRAINED_MARK if under_trained_seeds(results) else ""
