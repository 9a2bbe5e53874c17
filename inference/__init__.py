"""Using a trained NucEL model: embeddings of any length (`embed`) and zero-shot variant scores (`variants`).

Reads saved model folders only (never a training run's internals) and runs no code from them.
"""
