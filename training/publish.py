"""Assemble a Hub folder from a NucEL model folder, prove it loads in a fresh process, then (optionally) push:
the command; publishing lives beside the cards in `hub_cards/publish.py`.

    python training/publish.py --model runs/demo/discriminator --output-dir runs/hub/nucel-demo [--format modernbert]
"""

import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository's packages importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hub_cards.publish import cli  # noqa: E402

if __name__ == "__main__":
    cli()
