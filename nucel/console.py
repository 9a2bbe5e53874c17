"""What every command shows its user: `--quiet`, `--progress-bar`, the one progress bar, and the libraries' chatter.

The rule, the same for every command:

- `--progress-bar auto` (the default): one bar, on stderr, when stderr is a terminal; `on`: a bar even into a log
  file; `off`: no bar. Long work shows ONE bar with a rate in the unit of the work (bp/s, step/s, variant/s, ...)
  and an ETA; its latest numbers (loss, dev metric) sit in the bar's postfix instead of scrolling lines. Without a
  bar (a log file, `--progress-bar off`) the training commands print one line per logging step or evaluation
  instead. A command run inside another (a benchmark cell, a study's pretraining run) shows its progress in the
  postfix of the outer bar: still one bar.
- `--quiet`: no progress of any kind (no bar, no per-step lines) and no library messages; only the command's own
  lines (what it runs, once, and what it found and wrote), its warnings and its errors. It implies
  `--progress-bar off`; `--quiet --progress-bar on` is refused as a contradiction.
- The libraries' own bars ("Loading weights", "Writing model shards", datasets' "Generating ... split") are
  always off in a command: the command's bar is the one bar. Their loading reports (a table of MISSING weights for
  a new task head) are read by this package instead (`library_errors_only` around the load, then our own check of
  the load result): a known-harmless one becomes one `note: ...` line (`note`), anything else is reported in full.

`apply_output_options(args)` at the start of a command's `main` sets it all, and exports the settings as
environment variables (HF_HUB_DISABLE_PROGRESS_BARS, TRANSFORMERS_VERBOSITY, ...) so that child processes inherit
them. Under `accelerate launch` only the main rank shows a bar or a note.
"""

import contextlib
import dataclasses
import logging
import os
import sys
import time
import warnings

from tqdm.auto import tqdm

from nucel.commands import is_main_rank

PROGRESS_BAR_CHOICES = ("auto", "on", "off")
# What a --quiet command exports to its child processes (each only when the user has not set it). Not
# ACCELERATE_LOG_LEVEL: accelerate applies it to the root logger as well, not only to its own.
QUIET_ENVIRONMENT = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1", "DATASETS_VERBOSITY": "error", "TQDM_DISABLE": "1",
}
# Library loggers a --quiet command keeps to errors (transformers and datasets have their own switches as well).
LIBRARY_LOGGERS = ("transformers", "datasets", "accelerate", "huggingface_hub", "torch", "peft")


@dataclasses.dataclass
class Output:
    """A command's output settings: --quiet and --progress-bar as given."""

    quiet: bool = False
    progress_bar: str = "auto"

    def bars(self):
        """Whether this process draws progress bars: never under --quiet or on a rank other than the main one."""
        if self.quiet or self.progress_bar == "off" or not is_main_rank():
            return False
        return self.progress_bar == "on" or _is_terminal(sys.stderr)


_output = Output()
_exported = set()  # environment variables a --quiet command set (each only where the user had not)
_turned_off = set()  # the libraries whose bars this module turned off ("transformers", "datasets", ...)
_library_levels = {}  # logger name -> its level before a --quiet command raised it
_saved_warnings = []  # a catch_warnings() holding the filters from before a --quiet command (empty: untouched)
_open_bars = []  # the bars on screen in this process, outermost first (at most one is drawn)
_notes = set()  # notes printed in this process (each once)


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def add_output_options(parser):
    """--quiet and --progress-bar, the same for every command."""
    group = parser.add_argument_group("output")
    group.add_argument("--quiet", action="store_true",
                       help="only the command's own lines (what it runs, what it wrote), warnings and errors: no "
                            "progress bar, no per-step lines, no library messages (implies --progress-bar off)")
    group.add_argument("--progress-bar", choices=PROGRESS_BAR_CHOICES, default="auto",
                       help="auto (default): one progress bar on stderr when stderr is a terminal; on: a bar even "
                            "when stderr is a file; off: none. Without a bar the training commands print a line per "
                            "logging step or evaluation instead")
    return parser


def output_settings():
    """This process's Output (what the last apply_output_options set)."""
    return _output


def apply_output_options(args=None, *, quiet=None, progress_bar=None):
    """Set this process's output from the parsed options (`args.quiet`, `args.progress_bar`, either may be absent)
    or from the keywords. Library bars go off; under --quiet the libraries' logging goes to errors only, Python's
    warnings from outside this package are silenced, and the settings are exported to child processes. A later
    call (the next command run in the same process) undoes what an earlier --quiet set."""
    global _output
    quiet = bool(getattr(args, "quiet", False)) if quiet is None else bool(quiet)
    progress_bar = (getattr(args, "progress_bar", None) or "auto") if progress_bar is None else progress_bar
    if progress_bar not in PROGRESS_BAR_CHOICES:
        raise ValueError(f"--progress-bar {progress_bar!r}: expected {', '.join(PROGRESS_BAR_CHOICES)}")
    if quiet and progress_bar == "on":
        raise ValueError("--quiet and --progress-bar on contradict each other (--quiet shows no progress bar)")
    _output = Output(quiet, progress_bar)
    _quiet_libraries() if quiet else _restore_libraries()
    _library_bars(_output.bars())
    return _output


def _library_bars(downloads):
    """The libraries' bars are never a command's progress ("Loading weights" of a small model, "Writing model
    shards", datasets' split generation): always off; huggingface_hub's download bars only where ours are off (a
    download is real progress)."""
    import huggingface_hub.utils  # noqa: PLC0415  (imported by transformers, which `import nucel` loads)
    import transformers  # noqa: PLC0415  (the same)

    if transformers.utils.logging.is_progress_bar_enabled():
        _turned_off.add("transformers")
        transformers.utils.logging.disable_progress_bar()
    if "datasets" in sys.modules and sys.modules["datasets"].is_progress_bar_enabled():
        _turned_off.add("datasets")
        sys.modules["datasets"].disable_progress_bars()
    if not downloads and not huggingface_hub.utils.are_progress_bars_disabled():
        _turned_off.add("huggingface_hub")
        huggingface_hub.utils.disable_progress_bars()
    elif downloads and "huggingface_hub" in _turned_off:
        _turned_off.discard("huggingface_hub")
        huggingface_hub.utils.enable_progress_bars()


def _quiet_libraries():
    import transformers  # noqa: PLC0415  (imported by `import nucel` already)

    for name in LIBRARY_LOGGERS:  # their levels first: the verbosity switches below set the same loggers
        library = logging.getLogger(name)
        _library_levels.setdefault(name, library.level)
        library.setLevel(max(library.level, logging.ERROR))
    transformers.utils.logging.set_verbosity_error()
    if "datasets" in sys.modules:
        sys.modules["datasets"].utils.logging.set_verbosity_error()
    for name, value in QUIET_ENVIRONMENT.items():
        if name not in os.environ:
            _exported.add(name)
            os.environ[name] = value
    # Python warnings raised by the libraries (deprecations, "this op is slow on CPU"); this package prints its
    # own warnings as `warning: ...` lines, and any it raises as Python warnings still show.
    if not _saved_warnings:  # catch_warnings is the standard library's save and restore of the filters
        _saved_warnings.append(warnings.catch_warnings())
        _saved_warnings[0].__enter__()
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"nucel(\.|$)")


def _restore_libraries():
    """Undo what a --quiet command run earlier in this process set (nothing when none did): the environment, the
    library loggers' levels (transformers' and datasets' verbosity are those levels) and Python's warning filters."""
    for name in sorted(_exported):
        os.environ.pop(name, None)
    _exported.clear()
    for name, level in _library_levels.items():
        logging.getLogger(name).setLevel(level)
    _library_levels.clear()
    if _saved_warnings:
        _saved_warnings.pop().__exit__(None, None, None)


def reset_output():
    """Back to how a process starts (no command's options applied): bars closed, what --quiet set undone, the
    libraries' bars back on, the notes forgotten. For a process that runs commands one after another in itself
    (the tests)."""
    global _output
    import huggingface_hub.utils  # noqa: PLC0415  (imported by transformers, which `import nucel` loads)
    import transformers  # noqa: PLC0415  (the same)

    for bar in reversed(list(_open_bars)):
        bar.close()
    _restore_libraries()
    if "transformers" in _turned_off:
        transformers.utils.logging.enable_progress_bar()
    if "datasets" in _turned_off and "datasets" in sys.modules:
        sys.modules["datasets"].enable_progress_bars()
    if "huggingface_hub" in _turned_off:
        huggingface_hub.utils.enable_progress_bars()
    _turned_off.clear()
    _output = Output()
    _notes.clear()


def output_flags():
    """The output options of this process as command-line flags, for a command run inside it (a benchmark cell)."""
    if _output.quiet:
        return ["--quiet"]
    return [] if _output.progress_bar == "auto" else ["--progress-bar", _output.progress_bar]


def without_output_options(argv):
    """`argv` without --quiet and --progress-bar: options that change what is shown, never what is computed (a
    benchmark cell is reused whatever its output options were)."""
    kept, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--quiet" or item.startswith("--progress-bar="):
            continue
        elif item == "--progress-bar":
            skip = True
        else:
            kept.append(item)
    return kept


# ------------------------------------------------------------------------------------------------ the one bar
class _AboveTheBar:
    """sys.stdout / sys.stderr while a bar is drawn: whole lines go above the bar (tqdm.write), so a command's own
    lines never land in the middle of it."""

    def __init__(self, stream):
        self.stream, self.pending = stream, ""

    def write(self, text):
        self.pending += text
        if "\n" in self.pending:
            lines, _, self.pending = self.pending.rpartition("\n")
            self._above(lines)
        return len(text)

    def _above(self, lines):
        """tqdm.write clears the bars drawn on stdout or stderr: it finds them by comparing with sys.stdout and
        sys.stderr, which are these wrappers while a bar is open, so the real streams stand in for the call."""
        wrapped = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = (getattr(stream, "stream", stream) for stream in wrapped)
        try:
            tqdm.write(lines, file=self.stream)
        finally:
            sys.stdout, sys.stderr = wrapped

    def flush(self):
        self.stream.flush()

    def close_lines(self):
        if self.pending:
            self._above(self.pending)
            self.pending = ""

    def __getattr__(self, name):  # isatty, fileno, encoding, ... of the stream underneath
        return getattr(self.stream, name)


class _Bar(tqdm):
    """The top-level bar: while it is open, print() goes above it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._streams = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = _AboveTheBar(sys.stdout), _AboveTheBar(sys.stderr)
        # the libraries' log handlers hold the stream they were made with: theirs go above the bar too
        self._handlers = [handler for name in LIBRARY_LOGGERS for handler in logging.getLogger(name).handlers
                          if isinstance(handler, logging.StreamHandler) and handler.stream is self._streams[1]]
        for handler in self._handlers:
            handler.setStream(sys.stderr)
        _open_bars.append(self)
        self._open = True

    def close(self):
        if getattr(self, "_open", False):  # once (tqdm's __del__ closes again, possibly at interpreter exit)
            self._open = False
            _forget(self)
            for wrapper in (sys.stdout, sys.stderr):
                if isinstance(wrapper, _AboveTheBar):
                    wrapper.close_lines()
            sys.stdout, sys.stderr = self._streams
            for handler in self._handlers:
                handler.setStream(self._streams[1])
        super().close()


def _forget(bar):
    """Take `bar` off the open bars (by identity: tqdm compares bars by their position)."""
    for index, open_bar in enumerate(_open_bars):
        if open_bar is bar:
            del _open_bars[index]
            return


class _InnerProgress:
    """The progress of work run inside a command that already draws a bar (a benchmark cell's training): shown in
    that bar's postfix, as `<desc> <n>/<total> <unit>, <postfix>`."""

    disable = False

    def __init__(self, outer, total=None, initial=0, unit="it", desc=None, **_):
        self.outer, self.total, self.n, self.unit, self.desc = outer, total, initial, unit, desc
        self.postfix, self.shown_at, self._open = "", 0.0, True
        _open_bars.append(self)
        self._show(force=True)

    def _show(self, force=False):
        """The outer bar's postfix always holds the latest; it is redrawn at most once per its mininterval."""
        count = f"{self.n:,}" + (f"/{self.total:,}" if self.total else "") + f" {self.unit}"
        self.outer.set_postfix_str(", ".join(part for part in (f"{self.desc or ''} {count}".strip(), self.postfix)
                                             if part), refresh=False)
        now = time.monotonic()
        if force or now - self.shown_at >= self.outer.mininterval:
            self.outer.refresh()
            self.shown_at = now

    def update(self, n=1):
        self.n += n
        self._show()

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        values = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{key} {value}" for key, value in values.items())
        self._show()

    def set_postfix_str(self, text="", refresh=True):
        self.postfix = text
        self._show()

    def set_description(self, desc=None, refresh=True):
        self.desc = desc
        self._show()

    def refresh(self):
        self._show(force=True)

    @staticmethod
    def write(text, file=None, end="\n"):
        tqdm.write(text, file=file, end=end)

    def close(self):
        if self._open:
            self._open = False
            _forget(self)
            self.outer.set_postfix_str("", refresh=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def progress(total=None, *, unit="it", desc=None, initial=0, unit_scale=False, enabled=True, leave=True):
    """The one progress bar of a command: over `total` units of `unit` (bp, step, variant, ...), with a rate and
    an ETA, on stderr. Drawn when the output settings allow one (`Output.bars`) and `enabled` (False: a YAML
    `progress_bar: false`). Inside a command that already draws one it becomes that bar's postfix; otherwise it
    is a bar that draws nothing (`.disable` is True; see `progress_lines`). `leave=False`: the bar is erased when
    closed (a result line takes its place). Use it as a context manager, or close it."""
    outer = next((bar for bar in _open_bars if isinstance(bar, _Bar)), None)
    if outer is not None:  # `enabled` is about a bar of its own: the outer bar shows where the work is
        return _InnerProgress(outer, total=total, initial=initial, unit=unit, desc=desc)
    if not (enabled and _output.bars()):
        return tqdm(total=total, initial=initial, disable=True)
    terminal = _is_terminal(sys.stderr)
    return _Bar(total=total, initial=initial, unit=unit, unit_scale=unit_scale, desc=desc, file=sys.stderr,
                dynamic_ncols=terminal, mininterval=0.1 if terminal else 1.0, smoothing=0.1, leave=leave)


def progress_lines(bar):
    """Whether a command prints a line per logging step or evaluation: when no bar shows its progress (`bar` is
    the one `progress` gave), not under --quiet, on the main rank."""
    return getattr(bar, "disable", True) and not _output.quiet and is_main_rank() \
        and not any(isinstance(open_bar, _Bar) for open_bar in _open_bars)


# ------------------------------------------------------------------------------------------ the libraries' chatter
@contextlib.contextmanager
def library_errors_only():
    """transformers' logging at errors only, and its bars off, for one call (a `from_pretrained`): its loading
    report is many lines; the caller reads the load result (`output_loading_info=True`) and says what matters
    itself (`note` for what is known and harmless, in full for anything else)."""
    from transformers.utils import logging as transformers_logging  # noqa: PLC0415  (imported by nucel already)

    previous, bar = transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(previous)
        if bar:
            transformers_logging.enable_progress_bar()


def note(text):
    """One `note: ...` line on stderr for something known and harmless (a new head initialised for a task), once
    per process; nothing under --quiet or on a rank other than the main one."""
    if _output.quiet or not is_main_rank() or text in _notes:
        return
    _notes.add(text)
    print(f"note: {text}", file=sys.stderr, flush=True)


def list_names(names, at_most=8):
    """`a, b, c` for a note; past `at_most`, the first ones and how many more."""
    names = list(names)
    shown = ", ".join(names[:at_most])
    return shown + (f" and {len(names) - at_most} more" if len(names) > at_most else "")


class _AsNote(logging.Filter):
    def __init__(self, recognise):
        super().__init__()
        self.recognise = recognise

    def filter(self, record):
        text = self.recognise(record.getMessage())
        if text is None:
            return True
        if text:
            note(text)
        return False


@contextlib.contextmanager
def library_message_as_note(logger_name, recognise):
    """While inside: a record of the library logger `logger_name` that `recognise(message)` knows to be harmless
    (it returns the note's text) becomes one `note: <text>` line, once (an empty text: nothing); any other record
    (None) passes as it is."""
    library = logging.getLogger(logger_name)
    found = _AsNote(recognise)
    library.addFilter(found)
    try:
        yield
    finally:
        library.removeFilter(found)
