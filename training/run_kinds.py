"""The run directories training's commands write, and the files that identify each in a folder written before
run markers existed (see nucel/run_directory.py)."""

from nucel.run_directory import RunKind

RUN_KINDS = {
    "pretrain": RunKind("a pretraining run", ("pretraining_summary.json", "metrics.jsonl", "genome-store",
                                              "checkpoints/step-*")),
    "finetune": RunKind("a fine-tuning run", ("results.json", "predictions.csv")),
    "benchmark": RunKind("a benchmark grid", ("benchmark.json", "benchmark.md")),
    "study": RunKind("a study (nucel study)", ("study.json", "plan.json")),
}
