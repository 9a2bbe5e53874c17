"""Pretrain arms at equal compute (once per pretraining seed) and compare them with baselines on benchmark tasks,
every row fine-tuned alike: the command; the study is `training/studies/`.

    python training/study.py --config training/configs/study-tiny.yaml
"""

import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository's packages importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from training.studies.run import cli  # noqa: E402

if __name__ == "__main__":
    cli()
