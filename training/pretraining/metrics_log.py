"""`metrics.jsonl`: one JSON object per logged step (training lines) or evaluation (lines with "eval_" keys),
appended and flushed as they happen; truncated back to the checkpoint on resume; drawn as a PNG of the curves."""

import json
import os

# Each validation accuracy beside the trivial baseline it must beat: a discriminator that calls every base original,
# a generator (or MLM) that always predicts the commonest base.
BASELINE_OF = {"eval_discriminator_accuracy": "eval_all_original_accuracy",
               "eval_generator_accuracy": "eval_base_composition_accuracy",
               "eval_mlm_accuracy": "eval_base_composition_accuracy"}
# An accuracy within this of its baseline has learned nothing that the threshold shows.
NO_BETTER_MARGIN = 1e-3


def not_learned(evaluation):
    """One sentence per validation accuracy that is no better than its trivial baseline (see BASELINE_OF)."""
    found = []
    for key, baseline in BASELINE_OF.items():
        value, floor = evaluation.get(key), evaluation.get(baseline)
        if value is None or floor is None or value > floor + NO_BETTER_MARGIN:
            continue
        name, floor_name = key[len("eval_"):], baseline[len("eval_"):]
        found.append(f"{name} {value:.4f} is no better than {floor_name} {floor:.4f}"
                     + (f" (AUC {evaluation['eval_discriminator_auc']:.4f}: it ranks replaced bases a little, but "
                        "calls every base original)" if key == "eval_discriminator_accuracy"
                        and evaluation.get("eval_discriminator_auc") is not None else "")
                     + ": train longer, or check the learning rate and the data")
    return found


class MetricsLog:
    def __init__(self, path):
        self.path = path

    def write(self, record):
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def read(self):
        """The records; a half-written last line (where a kill interrupted a write) is skipped, a broken line
        before it is an error naming the file and line."""
        if not os.path.exists(self.path):
            return []
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            lines = [(number, line) for number, line in enumerate(handle, start=1) if line.strip()]
        records = []
        for position, (number, line) in enumerate(lines):
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or "step" not in record:
                    raise ValueError("not a record with a step")
            except ValueError as failure:
                if position == len(lines) - 1 and not line.endswith("\n"):
                    break  # the interrupted last write: a resumed run writes it again
                raise ValueError(f"{self.path}:{number}: corrupt metrics line ({failure})") from None
            records.append(record)
        return records

    def truncate_after(self, step):
        """Drop lines logged after `step` (a resumed run writes them again, identically)."""
        kept = [record for record in self.read() if record["step"] <= step]
        with open(self.path + ".tmp", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(record) + "\n" for record in kept)
        os.replace(self.path + ".tmp", self.path)

    def plot(self, png_path):
        """Training losses (left) and validation metrics (right) against step."""
        import matplotlib  # noqa: PLC0415  (plotting only; importing this module leaves matplotlib's backend alone)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415  (after the Agg backend is chosen)

        records = self.read()
        train = [r for r in records if "loss" in r]
        evals = [r for r in records if any(key.startswith("eval_") for key in r)]
        figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        for key in ("loss", "generator_loss", "discriminator_loss"):
            points = [(r["step"], r[key]) for r in train if r.get(key) is not None]
            if points:
                left.plot(*zip(*points), label=key)
        left.set(xlabel="step", ylabel="training loss", yscale="log", title="training")
        baselines = set(BASELINE_OF.values())
        for key in sorted({k for r in evals for k in r if k.startswith("eval_") and "loss" not in k}):
            points = [(r["step"], r[key]) for r in evals if r.get(key) is not None]
            if key in baselines:  # dashed, wide and on top: still visible where a model's curve lies on it
                right.plot(*zip(*points), linestyle=(0, (4, 3)), linewidth=2.5, color="black", alpha=0.6,
                           zorder=5, label=f"{key[len('eval_'):]} (baseline)")
            else:
                right.plot(*zip(*points), marker="o", zorder=2, label=key[len("eval_"):])
        right.set(xlabel="step", ylabel="validation", title="validation")
        save_figure(figure, (left, right), png_path)


def save_figure(figure, axes, png_path, dpi=100):
    """A legend on each of `axes` that has lines, then the PNG written beside `png_path` and swapped in (a reader
    never sees half a picture), and the figure closed."""
    import matplotlib.pyplot as plt  # noqa: PLC0415  (plotting only: a run that never plots never loads it)

    for axis in axes:
        if axis.lines:
            axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(png_path + ".tmp.png", dpi=dpi)
    plt.close(figure)
    os.replace(png_path + ".tmp.png", png_path)
