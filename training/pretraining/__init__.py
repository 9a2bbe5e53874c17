"""Pretraining pieces: config, genome windows, masking, batches, objectives, the builders studies and benchmarks
share (`build.py`), compute, checkpoints, and the loop (`run.py`, behind `training/pretrain.py`)."""
