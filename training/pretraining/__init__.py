"""Pretraining pieces: config, genome windows, masking, batches, objectives, compute, checkpoints, the loop
(`run.py`, behind `training/pretrain.py`)."""
