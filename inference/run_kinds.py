"""The run directories inference's commands write (see nucel/run_directory.py)."""

from nucel.run_directory import RunKind

RUN_KINDS = {"interpret": RunKind("an interpretation run")}
