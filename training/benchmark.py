"""Fine-tune a grid of models on a grid of tasks and print one markdown table: the command; the grid is
`training/finetuning/grid.py`.

    python training/benchmark.py --tasks ../shared/data/gue/prom_core_tata --models runs/demo/discriminator onehot-cnn
"""

from nucel.training.finetuning.grid import cli

if __name__ == "__main__":
    cli()
