"""Pretrain NucEL (ELECTRA or the MLM baseline) with accelerate: the command; the pieces are
`training/pretraining/` (config, genome windows, masking, batches, objectives, checkpoints, the loop).

    accelerate launch training/pretrain.py --config training/configs/tiny.yaml --fasta genome.fa.gz
    python training/pretrain.py --config training/configs/tiny.yaml --output-dir runs/x --resume
    python training/pretrain.py --help          # every config key with its default
"""

import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository's packages importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from training.pretraining.run import cli  # noqa: E402

if __name__ == "__main__":
    cli()
