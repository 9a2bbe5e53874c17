"""Using a trained NucEL model: embeddings of any length (`embed`), zero-shot variant scores (`variants`, with VCF
in and out in `vcf`) and interpretation (`interpret`).

Reads saved model folders only (never a training run's internals) and runs no code from them.
"""
