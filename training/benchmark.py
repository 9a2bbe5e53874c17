"""Fine-tune a grid of models on a grid of tasks and print one markdown table: the command; the grid is
`training/finetuning/grid.py`.

    python training/benchmark.py --tasks ../shared/data/gue/prom_core_tata --models runs/demo/discriminator onehot-cnn
"""

import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository's packages importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from training.finetuning.grid import cli  # noqa: E402

if __name__ == "__main__":
    cli()
