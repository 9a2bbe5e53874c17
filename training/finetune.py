"""Fine-tune (or probe) a model on a benchmark task with `transformers.Trainer`: the command; the pieces are
`training/finetuning/` (tasks, baselines, metrics, the runner).

    python training/finetune.py --model runs/demo/discriminator --task-dir ../shared/data/gue/prom_core_tata \
        --output-dir runs/ft/tata --seeds 42 43 44
    torchrun --nproc_per_node 4 training/finetune.py --model ... --task-dir ... --output-dir ...
"""

import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository's packages importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from training.finetuning.run import cli  # noqa: E402

if __name__ == "__main__":
    cli()
