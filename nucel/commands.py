"""How every command meets bad input: one `error: ...` line and exit status 1, no traceback."""

import json
import os
import sys
import time

# What the libraries that read users' files raise about a file's content (module, class), looked up only where
# the module is already loaded: a corrupt safetensors header, an htslib failure, a Hub file that is not there,
# broken YAML, gzip or CSV. They describe the input, not a bug here; the commands name the input where they can,
# and these are the rest.
LIBRARY_INPUT_ERRORS = (("safetensors", "SafetensorError"), ("pysam.utils", "SamtoolsError"),
                        ("huggingface_hub.errors", "EntryNotFoundError"), ("yaml", "YAMLError"),
                        ("zlib", "error"), ("csv", "Error"))
# Running out of memory is the input's size (or a batch's), not a bug: say so in one line.
OUT_OF_MEMORY = (("builtins", "MemoryError"), ("torch", "OutOfMemoryError"))


def is_main_rank():
    """False on the non-zero ranks of a distributed launch, which stay quiet so an error is printed once."""
    return os.environ.get("RANK", "0") == "0"


def first_paragraph(docstring):
    """A command's `--help` description: its module docstring's first paragraph on one line."""
    return " ".join(docstring.split("\n\n")[0].split())


def one_line(error):
    """An exception's message on one line (a library's may span several)."""
    return " ".join(line.strip() for line in str(error).strip().splitlines() if line.strip()) or type(error).__name__


def loaded_classes(names):
    return tuple(getattr(sys.modules[module], name) for module, name in names
                 if module in sys.modules and hasattr(sys.modules[module], name))


def fail(message):
    """End the process with `message` (the main rank prints it; the others stay quiet so it is printed once).
    Under torchrun every rank also writes it to its error file (TORCHELASTIC_ERROR_FILE), so the launcher's
    closing failure summary ends with the failing rank's line, not only its exit code."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if path:
        try:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump({"message": {"message": message, "extraInfo": {
                    "py_callstack": message, "timestamp": str(int(time.time()))}}}, handle)
        except OSError:
            pass  # the launcher's summary then says only the exit code, as it would anyway
    sys.exit(message if is_main_rank() else 1)


def one_line_errors(main):
    """The console entry point for `main(argv)`: a ValueError (bad input, raised before any work is lost), an
    OSError (unreadable, unwritable, missing, read-only, a full disk, a corrupt gzip), EOFError, what the libraries
    reading the input raise about its content (LIBRARY_INPUT_ERRORS) and running out of memory become
    `error: <message>` on stderr with exit status 1; anything else is a bug and keeps its traceback."""
    def cli(argv=None):
        try:
            main(argv)
        except ValueError as error:
            fail(f"error: {one_line(error)}")
        except OSError as error:
            if error.filename is None:
                fail(f"error: {one_line(error)}")
            where = error.filename if error.filename2 is None else f"{error.filename} -> {error.filename2}"
            fail(f"error: {where}: {error.strerror or one_line(error)}")
        except EOFError as error:
            fail(f"error: an input ends early ({one_line(error)})")
        except Exception as error:  # re-raised below unless it is one of the kinds above
            if isinstance(error, loaded_classes(OUT_OF_MEMORY)):
                fail(f"error: out of memory ({one_line(error)}); a smaller batch or window needs less")
            if isinstance(error, loaded_classes(LIBRARY_INPUT_ERRORS)):
                fail(f"error: {type(error).__name__}: {one_line(error)}")
            raise
    cli.__doc__ = f"Run {main.__module__}.main; bad input ends it with one `error: ...` line (exit status 1)."
    return cli
