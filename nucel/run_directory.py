"""Who owns an output directory: a marker naming the kind of run that made it, and a lock held while one writes.

Every command that writes a run directory (pretrain, finetune, benchmark, study, publish, interpret, convert; each
room declares its kinds in its `run_kinds.py`) first checks it
(`check_output_directory`, read-only: a file in the way, a directory of another kind of run) and then claims it
(`claim_output_directory`: created if missing, an exclusive lock taken, the marker written). A second command on
the same directory while the first runs is refused with one line naming the holder; a lock left by a dead process
is taken over. Folders written before markers existed are recognised by the files each kind leaves.
"""

import errno
import fcntl
import functools
import glob
import importlib.metadata
import json
import os
import socket
import time
from dataclasses import dataclass

from nucel.files import read_json_object

MARKER = ".nucel-run.json"
LOCK = ".nucel-run.lock"


@dataclass(frozen=True)
class RunKind:
    """A kind of run directory: what it is called in messages, and the files that identify it in a directory
    written before markers existed (a tuple inside `signatures`: all of those files)."""

    description: str
    signatures: tuple = ()


# Each room declares the kinds of directory its commands write in its `run_kinds.py` (a table of RunKind), listed
# under the `nucel.run_kinds` entry points in setup.cfg: every command, whichever room it lives in, recognises every
# kind (a publish run refuses a pretraining run's folder by name) without a room importing another. The ground
# itself knows only saved model folders, which no command may write into.
ENTRY_POINTS = "nucel.run_kinds"
SAVED_MODEL = RunKind("a saved model", ("config.json", "model.safetensors"))


@functools.lru_cache(maxsize=1)
def run_kinds():
    """{kind: RunKind} of every room (the `nucel.run_kinds` entry points), then `model`. Kinds recognised by
    several files together (an assembled Hub folder: card + config) are tried first, a saved model last, as a run
    folder may also hold a config."""
    kinds = {}
    for entry in sorted(importlib.metadata.entry_points(group=ENTRY_POINTS), key=lambda entry: entry.name):
        kinds.update(entry.load())
    ordered = sorted(kinds.items(), key=lambda item: not any(isinstance(s, tuple) for s in item[1].signatures))
    return {**dict(ordered), "model": SAVED_MODEL}


def describe_kind(kind, marker=None):
    """How a message names `kind`: its room's description, else what its marker recorded, else the name."""
    known = run_kinds().get(kind)
    return known.description if known else (marker or {}).get("description") or kind


def read_marker(directory):
    path = os.path.join(directory, MARKER)
    if not os.path.isfile(path):
        return None
    marker = read_json_object(path, "run marker", ("kind",), hint="expected the JSON a NucEL command writes")
    if not isinstance(marker.get("kind"), str):
        raise ValueError(f"{path}: run marker without a 'kind'; expected the JSON a NucEL command writes")
    return marker


def kind_of(directory):
    """(kind, evidence) of an existing directory: from its marker, else from the files it holds; (None, None)."""
    marker = read_marker(directory)
    if marker:
        return marker["kind"], MARKER

    def holds(pattern):
        return bool(glob.glob(os.path.join(glob.escape(directory), pattern)))

    for kind, run_kind in run_kinds().items():
        for signature in run_kind.signatures:
            files = signature if isinstance(signature, tuple) else (signature,)
            if all(holds(pattern) for pattern in files):
                return kind, " + ".join(files)
    return None, None


def check_output_directory(directory, kind, option="--output-dir"):
    """Refuse, without writing anything, a directory this `kind` of command must not write into."""
    if os.path.lexists(directory) and not os.path.isdir(directory):
        raise ValueError(f"{option} {directory}: exists and is not a directory")
    if not os.path.isdir(directory):
        parent = os.path.dirname(os.path.abspath(directory))
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
            raise ValueError(f"{option} {directory}: cannot be created ({parent} is not a writable directory)")
        return
    if not os.access(directory, os.R_OK | os.W_OK | os.X_OK):
        raise ValueError(f"{option} {directory}: not readable and writable by this user")
    found, evidence = kind_of(directory)
    if found is not None and found != kind:
        raise ValueError(f"{option} {directory}: holds {describe_kind(found, read_marker(directory))} ({evidence}), "
                         f"not {describe_kind(kind)}; choose another {option} (nothing was written)")


class RunLock:
    """An exclusive `flock` on `<directory>/.nucel-run.lock`, held until `release()` or the process ends (the
    kernel drops it when its holder dies, so a lock left by a killed run is never stale). The file records the
    holder's pid, host and start time for the refusal message; where the file system has no `flock`, those
    decide instead: a lock from this host whose pid is gone is taken over."""

    def __init__(self, directory, name=LOCK, busy="in use by another NucEL run",
                 advice="wait for it to finish or choose another --output-dir"):
        self.path = os.path.join(directory, name)
        self.busy, self.advice = busy, advice
        self.handle = None

    def holder(self):
        try:
            with open(self.path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}

    def refuse(self, holder):
        """The one line for a lock that `holder` (its record, or {} if unknown) holds."""
        described = (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since "
                     f"{holder.get('started', '?')}") if holder else "another process"
        raise ValueError(f"{os.path.dirname(self.path)}: {self.busy} ({described}); {self.advice}")

    def held_elsewhere(self):
        """The holder's record while another process holds the lock, else None; takes nothing (for readers that
        must not open what is being written)."""
        try:
            handle = open(self.path, encoding="utf-8")
        except OSError:
            return None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as failure:
                if failure.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    return self.holder() or {"pid": "?"}
                return None  # no flock on this file system: nothing to tell from here
            fcntl.flock(handle, fcntl.LOCK_UN)
        return None

    def acquire(self):
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as failure:
            if failure.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                handle.close()
                self.refuse(self.holder())
            if not self._stale_or_free(self.holder()):  # no flock on this file system: decide by pid and host
                handle.close()
                self.refuse(self.holder())
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
        handle.flush()
        self.handle = handle
        return self

    @staticmethod
    def _stale_or_free(holder):
        if not holder or holder.get("pid") == os.getpid():
            return True
        if holder.get("host") != socket.gethostname():
            return False  # another machine's process cannot be checked from here
        return not pid_alive(holder.get("pid"))

    def release(self):
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


def claim_output_directory(directory, kind, option="--output-dir"):
    """Check, create if missing, lock and mark `directory` for this `kind`; returns the held `RunLock`."""
    check_output_directory(directory, kind, option)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as failure:
        raise ValueError(f"{option} {directory}: cannot be created ({failure.strerror})") from None
    lock = RunLock(directory).acquire()
    try:
        check_output_directory(directory, kind, option)  # again, now that no other run can change it
        if read_marker(directory) is None:
            with open(os.path.join(directory, MARKER), "w", encoding="utf-8") as handle:
                json.dump({"kind": kind, "description": describe_kind(kind),
                           "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, handle)
    except BaseException:
        lock.release()
        raise
    return lock
