"""Fine-tuning pieces: baselines, the model of one seed (`models.py`), metrics, the stopping rule, what a run writes
(`records.py`), the seed loop (`run.py`, behind `training/finetune.py`) and the benchmark grid (`grid.py`, behind
`training/benchmark.py`)."""
