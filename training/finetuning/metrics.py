"""Fine-tuning metrics with sklearn / scipy (the `evaluate` Hub scripts do not load offline), and seed aggregates.

Classification: MCC (the GUE metric), accuracy, macro F1, macro precision, macro recall. Multi-label: MCC over
every (row, label) decision, subset accuracy, macro F1 / precision / recall over labels; a label is predicted when
its logit is > 0. Regression: Pearson, Spearman, MSE. Where a correlation is undefined (constant predictions or
labels) it is 0, the convention sklearn uses for MCC.
"""

import statistics

import numpy as np
from scipy import stats
from sklearn import metrics as sk

# The metric that picks the best dev checkpoint and heads the benchmark table.
PRIMARY_METRIC = {"multi-class": "mcc", "multi-label": "mcc", "regression": "pearson"}


def predicted_labels(label_type, logits):
    """Class ids (multi-class), 0/1 matrix (multi-label) or values (regression) from the model's outputs."""
    logits = np.asarray(logits)
    if label_type == "multi-class":
        return logits.argmax(-1)
    if label_type == "multi-label":
        return (logits > 0).astype(np.int64)
    return logits.reshape(len(logits), -1)[:, 0]


def _correlation(function, labels, predictions):
    if np.ptp(labels) == 0 or np.ptp(predictions) == 0:
        return 0.0
    return float(function(labels, predictions)[0])


def score(label_type, labels, logits):
    """All metrics of `label_type` for true `labels` and model `logits` (or, for regression, predictions)."""
    labels, predictions = np.asarray(labels), predicted_labels(label_type, logits)
    if label_type == "regression":
        labels = labels.reshape(-1).astype(np.float64)
        return {"pearson": _correlation(stats.pearsonr, labels, predictions),
                "spearman": _correlation(stats.spearmanr, labels, predictions),
                "mse": float(sk.mean_squared_error(labels, predictions))}
    labels = labels.astype(np.int64)
    flat = (labels.ravel(), predictions.ravel()) if label_type == "multi-label" else (labels, predictions)
    return {"mcc": float(sk.matthews_corrcoef(*flat)),
            "accuracy": float(sk.accuracy_score(labels, predictions)),  # subset accuracy for multi-label
            "f1": float(sk.f1_score(labels, predictions, average="macro", zero_division=0)),
            "precision": float(sk.precision_score(labels, predictions, average="macro", zero_division=0)),
            "recall": float(sk.recall_score(labels, predictions, average="macro", zero_division=0))}


def trainer_metrics(label_type):
    """`compute_metrics` for `transformers.Trainer`."""
    def compute(evaluation):
        return score(label_type, evaluation.label_ids, evaluation.predictions)
    return compute


def aggregate(per_seed):
    """{metric: {mean, sd, n, values}} over a list of per-seed metric dicts; sd is the sample sd (None for n=1)."""
    summary = {}
    for name in per_seed[0]:
        values = [float(run[name]) for run in per_seed]
        summary[name] = {"mean": statistics.fmean(values),
                         "sd": statistics.stdev(values) if len(values) > 1 else None,
                         "n": len(values), "values": values}
    return summary


def format_mean_sd(entry, scale=1.0, digits=2):
    """`mean ± sd` (or just the mean for one seed), scaled, for tables."""
    mean = entry["mean"] * scale
    if entry["sd"] is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {entry['sd'] * scale:.{digits}f}"
