"""One job per run directory: a lock that a job holds for as long as it runs.

Every job that writes a run directory (train, prune, sweep, tune, sensitivity, export,
visualize) runs inside ``hold`` (or ``job``: ``distribute.job`` and the lock together); the
scripts take it before importing their job (``before_imports``: TensorFlow's import took 13 s
alone and 38 s with two sweeps starting at once, the refusal now 2 s), but for tune and
multi_worker runs, whose role (chief or worker) is known only after the import. A second job on a
directory in use is refused with a ``RunDirectoryInUseError`` naming the process that
holds it (pid, host, command, job, since when), or with ``wait`` waits for it, says so once and
then goes on: the run directory then holds the other job's finished work, which it resumes.

The lock is ``fcntl.flock`` on ``<dir>/.tfprune.lock`` (``rundir.LOCK_FILE``). The kernel
releases it when its holder ends, however it ends (SIGKILL, a crash, a reboot), so a lock is
never stale: a process that can take it knows the previous holder is gone. The file holds the
holder's description as JSON (written in place in one write after the lock is taken: a reader
that finds it empty or half-written reads it again). A clean release removes the file (while
still holding the lock; a taker checks that the file it locked is still the one at the path);
one left with a description therefore means its holder died, and the next job takes it over
with a one-line notice and removes the temporary files of ``io.atomic_path`` (``io.TEMP_PATTERN``,
and only those) that the dead holder left in the directory tree, saying how many; a
sub-directory whose lock another live job holds is left alone. A description naming another
directory is a copy's (``cp -r`` of a running or killed job, a multi-worker twin): replaced
without a notice.

Within a process the lock is re-entrant per thread: a job may run nested jobs into its own
directory or sub-directories (a sweep's baselines and variants, tune's trials). Another thread
opens the file anew and is refused or waits as another process would (flock locks belong to
the open file description).

Multi-worker runs (``distribute``): the chief holds the run directory's lock; another worker
writes its twin ``<dir>.worker<k>`` and locks that instead (``job``); keras-tuner's distributed
workers, which write trials inside the chief's directory, share the chief's lock (``shared``).

File systems where flock is not reliable: on Linux NFS, flock is emulated with NFS byte-range
locks, which work between clients only with a working lock manager (NLM for NFSv3, built into
NFSv4), and a lock of a client that crashed lasts until the server's lease or grace period
ends (a takeover waits, or is refused, until then). Where locking fails outright (ENOLCK,
EOPNOTSUPP: no lock manager, some FUSE or SMB mounts), the job says so on one line and runs
without a lock; nothing else is attempted there.
"""

import contextlib
import datetime
import errno
import fcntl
import fnmatch
import json
import os
import shlex
import socket
import sys
import threading
import time

from tfprune import distribute, io
from tfprune.errors import RunDirectoryInUseError
from tfprune.jobs.rundir import LOCK_FILE, check_output_dir

READ_ATTEMPTS = 20  # a description being written: read again, 50 ms apart
_COMMAND_CHARS = 200
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)

_held = {}  # realpath -> _Holding, this process's locks
_mutex = threading.Lock()


class _Holding:
    def __init__(self, fd, path, created):
        self.fd, self.path, self.created = fd, path, created
        self.thread = threading.get_ident()
        self.depth = 1


def describe_self(job, directory):
    """This process as the lock file records it."""
    program = sys.argv[0] if sys.argv and sys.argv[0] else ""
    argv = ["python", "-c"] if program in ("", "-c") else [os.path.basename(program)]
    argv += sys.argv[1:]
    command = shlex.join(argv)
    if len(command) > _COMMAND_CHARS:
        command = command[:_COMMAND_CHARS - 3] + "..."
    since = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "job": job,
            "since": since, "directory": directory}


def holder_text(holder):
    """One phrase naming a holder: pid, host, job and command, since when."""
    if not holder:
        return "another process (it has not written its description yet)"
    return (f"pid {holder.get('pid')} on host {holder.get('host')} ({holder.get('job')} job: "
            f"{holder.get('command')}) since {holder.get('since')}")


def _parse(data):
    try:
        value = json.loads(data.decode("utf-8"))
        return value if isinstance(value, dict) else None
    except ValueError:
        return None


def read_holder(lock_path, attempts=READ_ATTEMPTS):
    """The description in ``lock_path``, or None when it stays empty or unreadable."""
    for attempt in range(attempts):
        try:
            with open(lock_path, "rb") as f:
                holder = _parse(f.read())
        except FileNotFoundError:
            return None
        if holder is not None:
            return holder
        time.sleep(0.05)
    return None


def _same_file(fd, path):
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _lock(directory, lock_path, wait, log):
    """An fd of ``lock_path`` holding its flock; None where the file system has no locks."""
    said = False
    while True:
        os.makedirs(directory, exist_ok=True)  # again: a holder may have removed it as it left
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, io.file_mode())
        except FileNotFoundError:  # ... between the two lines: make it again
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = read_holder(lock_path)
                if not wait:
                    raise RunDirectoryInUseError(
                        f"output directory {directory!r} is in use by {holder_text(holder)}; "
                        "wait for it with --wait (wait=True), or choose another --output_dir"
                        ) from None
                if not said:
                    log(f"{directory} is in use by {holder_text(holder)}; waiting for it to "
                        "finish")
                    said = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, lock_path):
                return fd
        except OSError as e:
            empty = os.fstat(fd).st_size == 0
            os.close(fd)
            if e.errno not in _NO_LOCKS:
                raise
            if empty:  # made by this open: nothing to keep
                with contextlib.suppress(OSError):
                    os.remove(lock_path)
            log(f"{directory}: this file system cannot lock files ({e.strerror}); running "
                "without a lock, so make sure no other job uses this directory")
            return None
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # its holder removed that file as it released it: lock the new one


def _live_lock(directory):
    """True when another open file description (a live job) holds ``directory``'s lock."""
    if os.path.realpath(directory) in _held:
        return True
    try:
        fd = os.open(os.path.join(directory, LOCK_FILE), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def remove_temporary_files(directory):
    """Remove ``io.atomic_path``'s temporary files under ``directory`` (those of a writer that
    died), leaving alone sub-directories that a live job has locked; returns how many."""
    removed = 0
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not _live_lock(os.path.join(root, d))]
        for name in files:
            if fnmatch.fnmatch(name, io.TEMP_PATTERN):
                try:
                    os.remove(os.path.join(root, name))
                    removed += 1
                except FileNotFoundError:
                    pass
    return removed


def _take(directory, job, wait, log):
    real = os.path.realpath(directory)
    with _mutex:
        mine = _held.get(real)
        if mine is not None and mine.thread == threading.get_ident():
            mine.depth += 1
            return real
    check_output_dir(directory)
    created, missing = [], os.path.abspath(directory)
    while not os.path.isdir(missing):  # made for the lock: removed again if nothing else came
        created.append(missing)
        missing = os.path.dirname(missing)
    lock_path = os.path.join(directory, LOCK_FILE)
    fd = _lock(directory, lock_path, wait, log)
    if fd is None:
        return None
    try:
        previous = _parse(os.pread(fd, 1 << 16, 0))
        description = json.dumps(describe_self(job, real)).encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, description, 0)
        if previous is not None:
            removed = remove_temporary_files(directory)
            left = f"; removed {removed} temporary file(s) it left" if removed else ""
            if previous.get("directory") == real:
                log(f"{directory}: taking over the lock of {holder_text(previous)}, which "
                    f"is gone{left}")
            elif removed:
                log(f"{directory}: a copied run directory; removed {removed} temporary "
                    "file(s) copied with it")
    except BaseException:
        os.close(fd)
        raise
    with _mutex:
        _held[real] = _Holding(fd, lock_path, created)
    return real


def _release(real):
    with _mutex:
        mine = _held[real]
        mine.depth -= 1
        if mine.depth:
            return
        del _held[real]
    try:
        if _same_file(mine.fd, mine.path):
            os.remove(mine.path)  # while still locked: a taker checks it locked this path's file
    finally:
        os.close(mine.fd)
    for made in mine.created:  # the directory and the parents made for the lock, still empty
        try:
            os.rmdir(made)
        except OSError:
            break


@contextlib.contextmanager
def hold(directory, job, wait=False, log=print, shared=False):
    """Hold ``directory``'s lock for the block (``job``: the job's name, for the description).

    Refused with a RunDirectoryInUseError naming the holder while another process (or
    thread) holds it, unless ``wait``: then said once through ``log``, and waited for.
    ``shared``: this process is a worker of a distributed job whose chief holds the lock;
    nothing is taken. A directory created for the lock that stays empty is removed again.
    """
    if directory is None or shared:
        yield
        return
    real = _take(os.fspath(directory), job, wait, log)
    try:
        yield
    finally:
        if real is not None:
            _release(real)


def before_imports(output_dir, job, strategy="default", wait=False, log=print):
    """The lock a script takes before it imports its job (TensorFlow: 10 to 40 s), so a second
    job is refused at once; the job's own ``hold`` re-enters it. Nothing under multi_worker,
    whose chief is known only once the strategy has started (the job's lock decides there)."""
    if strategy == "multi_worker":
        return contextlib.nullcontext()
    return hold(output_dir, job, wait=wait, log=log)


@contextlib.contextmanager
def job(strategy, output_dir, name, wait=False, log=print):
    """``distribute.job`` and the lock of where this process writes: yields (the strategy, that
    directory). The chief of a multi-worker run (and a process without one) holds
    ``output_dir``'s lock; another worker writes its twin and locks that, never refused by the
    chief's (a lock file copied into the twin names another directory: replaced silently)."""
    with distribute.job(strategy, output_dir) as (started, own_dir):
        with hold(own_dir, name, wait=wait, log=log):
            yield started, own_dir
