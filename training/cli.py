"""How every script in training/ meets bad input: one `error: ...` line and exit status 1, no traceback."""

import os
import sys


def is_main_rank():
    """False on the non-zero ranks of a distributed launch, which stay quiet so an error is printed once."""
    return os.environ.get("RANK", "0") == "0"


def one_line_errors(main):
    """The console entry point for `main(argv)`: a ValueError (bad input, raised before any work is lost) or an
    OSError naming a path (unreadable, unwritable, missing, read-only) becomes `error: <message>` on stderr with
    exit status 1; anything else is a bug and keeps its traceback."""
    def cli(argv=None):
        try:
            main(argv)
        except ValueError as error:
            sys.exit(f"error: {error}" if is_main_rank() else 1)
        except OSError as error:
            if error.filename is None:
                raise
            where = error.filename if error.filename2 is None else f"{error.filename} -> {error.filename2}"
            sys.exit(f"error: {where}: {error.strerror or error}" if is_main_rank() else 1)
    cli.__doc__ = f"Run {main.__module__}.main; bad input ends it with one `error: ...` line (exit status 1)."
    return cli
