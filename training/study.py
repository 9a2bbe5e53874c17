"""Pretrain arms at equal compute (once per pretraining seed) and compare them with baselines on benchmark tasks,
every row fine-tuned alike: the command; the study is `training/studies/`.

    python training/study.py --config training/configs/study-tiny.yaml
"""

from nucel.training.studies.run import cli

if __name__ == "__main__":
    cli()
