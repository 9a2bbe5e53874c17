"""How every script in training/ meets bad input: one `error: ...` line and exit status 1, no traceback."""

import sys


def one_line_errors(main):
    """The console entry point for `main(argv)`: a ValueError (bad input, raised before any work is lost) becomes
    `error: <message>` on stderr; anything else is a bug and keeps its traceback."""
    def cli(argv=None):
        try:
            main(argv)
        except ValueError as error:
            sys.exit(f"error: {error}")
    cli.__doc__ = f"Run {main.__module__}.main; bad input ends it with one `error: ...` line (exit status 1)."
    return cli
