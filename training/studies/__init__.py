"""The equal-compute study: pretraining arms at one budget, then every arm and baseline on the same task splits."""
