"""Training to convergence: one stopping rule for every model a comparison trains, and the record of how each run
ended.

The invariant: a run ends either because dev stopped improving (`patience` evaluations in a row without beating
the best by more than `min_delta`: transformers' EarlyStoppingCallback, whose counting `stopping_record` mirrors)
or because it reached its maximum. A run that reached its maximum while the rule had not fired yet was still
improving: its number is an under-trained one, and tables mark it with `UNDER_TRAINED_MARK` so that no reader
takes it for what the model can do.

With patience 0 (no early stopping: a fixed budget, as older runs used) the same judgement is made with
`DEFAULT_PATIENCE`: a fixed-budget run whose best dev evaluation is among its last DEFAULT_PATIENCE was still
improving.
"""

DEFAULT_PATIENCE = 5  # evaluations without improvement before training stops
DEFAULT_MIN_DELTA = 0.0  # in units of the primary dev metric (MCC, Pearson)
# What the arms of one table must share; max_steps is per task (epochs x its training rows), so callers compare
# the cells of one task.
COMPARED_FIELDS = ("batch_size", "warmup_steps", "eval_steps", "patience", "min_delta", "max_steps", "learning_rate")
def evaluations_without_improvement(values, min_delta):
    """How many evaluations since dev last improved on the best by more than `min_delta` (0: the last one did),
    counted as transformers' EarlyStoppingCallback counts them (the best so far moves on any improvement)."""
    best, count = None, 0
    for value in values:
        count = 0 if best is None or value - best > min_delta else count + 1
        best = value if best is None else max(best, value)
    return count


def stopping_record(dev_values, steps, max_steps, patience, min_delta):
    """How a run ended, for results.json: steps trained of the maximum, `stopped` (early: the rule fired;
    maximum: it never did) and `still_improving` (reached the maximum before the rule fired)."""
    window = patience or DEFAULT_PATIENCE
    waiting = evaluations_without_improvement(dev_values, min_delta)
    stopped_early = bool(patience) and waiting >= patience and steps < max_steps
    return {"steps": steps, "max_steps": max_steps, "evaluations": len(dev_values), "patience": patience,
            "min_delta": min_delta, "evaluations_since_best": waiting,
            "stopped": "early" if stopped_early else "maximum",
            "still_improving": not stopped_early and waiting < window}


def protocol_differences(cells):
    """Lines naming each protocol field (batch, warmup, evaluation cadence, stopping rule, maximum, learning-rate
    search) on which the results.json files of one table differ: [] when the arms were trained alike."""
    lines = []
    protocols = {name: results.get("protocol") for name, results in cells.items()}
    unknown = sorted(name for name, value in protocols.items() if value is None)
    if unknown:
        lines.append(f"no recorded protocol (an older run): {', '.join(unknown)}")
    known = {name: value for name, value in protocols.items() if value is not None}
    for field in COMPARED_FIELDS:
        values = {}
        for name, value in known.items():
            values.setdefault(str(value.get(field)), []).append(name)
        if len(values) > 1:
            lines.append(f"{field} differs: " + "; ".join(f"{value} ({', '.join(names)})"
                                                         for value, names in values.items()))
    return lines
