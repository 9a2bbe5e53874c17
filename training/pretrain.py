"""Pretrain NucEL (ELECTRA or the MLM baseline) with accelerate: the command; the pieces are
`training/pretraining/` (config, genome windows, masking, batches, objectives, checkpoints, the loop).

    accelerate launch training/pretrain.py --config training/configs/tiny.yaml --fasta genome.fa.gz
    python training/pretrain.py --config training/configs/tiny.yaml --output-dir runs/x --resume
    python training/pretrain.py --help          # every config key with its default
"""

from nucel.training.pretraining.run import cli

if __name__ == "__main__":
    cli()
