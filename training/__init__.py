"""Where data meets the model to change its weights: pretraining, fine-tuning, benchmark grids and studies."""
