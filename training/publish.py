"""Assemble a Hub folder from a NucEL model folder, prove it loads in a fresh process, then (optionally) push:
the command; publishing lives beside the cards in `hub_cards/publish.py`.

    python training/publish.py --model runs/demo/discriminator --output-dir runs/hub/nucel-demo [--format modernbert]
"""

from nucel.hub_cards.publish import cli

if __name__ == "__main__":
    cli()
