"""The one output rule of every command: outputs never land on inputs, and a multi-file output is committed whole.

1. Before anything runs, every output path is resolved and compared with every input and with the other
   outputs (`check_distinct`): the same path, the same file under another name (a hard link or a symlink to
   it), or a file inside an input folder (a model's weights) is refused with one line.
2. Outputs are written under temporary names beside their final ones (`temporary_path`: `<final>.tmp-<pid>`)
   and committed together (`commit`): under an exclusive lock on their folders, every old final file is removed
   first and the new ones are renamed in, the completion record last. A kill part-way leaves some outputs
   missing, never an old file beside a new one that looks like a complete pair; two runs on one output commit
   one after the other, so the survivor is one run's set. Readers trust the completion record.
3. A killed run's temporary files are removed by the next run on the same output (`clean_leftovers`: only our
   own `<final>.tmp-<pid>` names whose process is gone). Space is reserved before a large memory-mapped output
   is written (`reserve`), so a full disk is one line, not a SIGBUS.
"""

import contextlib
import errno
import fcntl
import glob
import os
import shutil

from nucel.run_directory import pid_alive


def _identity(path):
    """(resolved path, (device, inode) where the file exists)."""
    real = os.path.realpath(path)
    try:
        status = os.stat(real)
        return real, (status.st_dev, status.st_ino)
    except OSError:
        return real, None


def check_distinct(outputs, inputs):
    """Refuse outputs that are an input, inside an input folder, or another output. `outputs` and `inputs` map an
    option name (e.g. "--output", "--vcf") to a path or None; an input folder also guards every file in it."""
    inputs = {option: _identity(path) for option, path in inputs.items() if path}
    seen = {}
    for option, path in outputs.items():
        if not path:
            continue
        real, inode = _identity(path)
        for input_option, (input_real, input_inode) in inputs.items():
            same = real == input_real or (inode is not None and inode == input_inode)
            inside = os.path.isdir(input_real) and real.startswith(input_real.rstrip(os.sep) + os.sep)
            if same or inside:
                where = "is" if same else "is inside"
                raise ValueError(f"{option} {path}: {where} the {input_option} input ({input_real}); writing there "
                                 "would overwrite what this command reads (choose another name)")
        if real in seen:
            raise ValueError(f"{option} {path}: is also {seen[real]}; give each output its own name")
        seen[real] = option


def temporary_path(final):
    return f"{final}.tmp-{os.getpid()}"


def remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def clean_leftovers(final):
    """Remove `<final>.tmp-<pid>` files or folders left by a killed run of ours (its process is gone)."""
    for path in glob.glob(glob.escape(final) + ".tmp-*"):
        pid = path.rsplit(".tmp-", 1)[1]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            remove(path)


@contextlib.contextmanager
def folder_locks(folders):
    """Exclusive `flock`s on folders (sorted, so two commits never wait on each other crosswise)."""
    handles = []
    try:
        for folder in sorted(set(folders)):
            handle = os.open(folder, os.O_RDONLY)
            handles.append(handle)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        for handle in reversed(handles):
            fcntl.flock(handle, fcntl.LOCK_UN)
            os.close(handle)


def commit(moves):
    """Rename each (temporary, final) of `moves` into place as one commit: the old finals go first, the new ones
    follow in order, the last move being the completion record readers trust."""
    folders = [os.path.dirname(os.path.abspath(final)) for _, final in moves]
    with folder_locks(folders):
        for _, final in reversed(moves):  # the completion record first: from here on the old set is incomplete
            remove(final)
        for temporary, final in moves:
            os.replace(temporary, final)


@contextlib.contextmanager
def naming(path):
    """An OSError that names no file (a write past a full disk or the file-size limit) names `path`, so the
    command's one-line error says where."""
    try:
        yield
    except OSError as failure:
        if failure.filename is not None:
            raise
        code = failure.errno or errno.EIO
        raise OSError(code, failure.strerror or os.strerror(code), path) from None


def reserve(path, nbytes):
    """Allocate `nbytes` for `path` now: a memory-mapped write past a full disk is a SIGBUS with no message, an
    allocation that does not fit is an OSError naming the file."""
    handle = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(handle, 0, nbytes)
    except OSError as failure:
        code = failure.errno or errno.ENOSPC
        raise OSError(code, f"{os.strerror(code)} (reserving {nbytes:,} bytes)", path) from None
    finally:
        os.close(handle)
