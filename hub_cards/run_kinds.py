"""The directories hub_cards' commands write, and how an assembled Hub folder written before run markers existed is
recognised: its card beside its config (see nucel/run_directory.py)."""

from nucel.run_directory import RunKind

RUN_KINDS = {
    "publish": RunKind("a Hub folder", (("README.md", "config.json"),)),
    "convert": RunKind("a converted model (nucel-convert)"),
}
