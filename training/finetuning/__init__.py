"""Fine-tuning pieces: tasks, baselines, metrics, the Trainer runner (`run.py`, behind `training/finetune.py`)
and the benchmark grid (`grid.py`, behind `training/benchmark.py`)."""
