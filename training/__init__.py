"""Where data meets the model to change its weights: pretraining, fine-tuning, benchmark grids and studies."""

from nucel.run_directory import register_run_kind

register_run_kind("pretrain", "a pretraining run", ("pretraining_summary.json", "metrics.jsonl", "genome-store",
                                                    "checkpoints/step-*"))
register_run_kind("finetune", "a fine-tuning run", ("results.json", "predictions.csv"))
register_run_kind("benchmark", "a benchmark grid", ("benchmark.json", "benchmark.md"))
register_run_kind("study", "a study (nucel-study)", ("study.json", "plan.json"))
