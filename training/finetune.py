"""Fine-tune (or probe) a model on a benchmark task with `transformers.Trainer`: the command; the pieces are
`training/finetuning/` (baselines, the model of one seed, metrics, stopping, records, the seed loop); task folders
are read by nucel/tasks.py.

    python training/finetune.py --model runs/demo/discriminator --task-dir ../shared/data/gue/prom_core_tata \
        --output-dir runs/ft/tata --seeds 42 43 44
    torchrun --nproc_per_node 4 training/finetune.py --model ... --task-dir ... --output-dir ...
"""

from nucel.training.finetuning.run import cli

if __name__ == "__main__":
    cli()
