"""The run directory's lock (jobs/runlock.py). Another process is stood in for by a second open
file description of the lock file, which flock treats exactly as another process's."""

import errno
import fcntl
import json
import os
import socket
import threading
import time

import pytest

from tfprune import distribute
from tfprune.errors import RunDirectoryError, RunDirectoryInUseError, TfpruneError
from tfprune.jobs import runlock
from tfprune.jobs.rundir import LOCK_FILE, prepare_run_dir

OTHER = {"pid": 4242, "host": "elsewhere", "command": "sweep.py --output_dir=run",
         "job": "sweep", "since": "2026-12-02 01:00:00 UTC"}


def other_holds(directory, description=OTHER):
    """Lock ``directory`` as another process would (a second open file description)."""
    os.makedirs(directory, exist_ok=True)
    fd = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    description = dict(description, directory=os.path.realpath(directory))
    os.pwrite(fd, json.dumps(description).encode(), 0)
    return fd


def other_releases(directory, fd):
    os.remove(os.path.join(directory, LOCK_FILE))  # as runlock releases: removed while locked
    os.close(fd)


def test_a_job_holds_the_lock_with_its_description_and_removes_it_at_the_end(tmp_path):
    run = tmp_path / "run"
    with runlock.hold(run, "sweep"):
        holder = json.loads((run / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert holder["job"] == "sweep" and holder["since"].endswith(" UTC")
        assert holder["directory"] == os.path.realpath(run) and holder["command"]
        prepare_run_dir(run, {"epochs": 1})
    assert sorted(os.listdir(run)) == ["config.json"]  # nothing of the lock left behind


def test_a_directory_made_for_the_lock_alone_is_removed_again(tmp_path):
    with pytest.raises(TfpruneError, match="bad config"):
        with runlock.hold(tmp_path / "new", "train"):
            raise TfpruneError("bad config")  # refused before anything was written
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    with runlock.hold(tmp_path / "mine", "train"):
        pass
    assert (tmp_path / "mine").is_dir()  # not made for the lock: kept


def test_a_directory_in_use_is_refused_naming_its_holder(tmp_path):
    run = tmp_path / "run"
    fd = other_holds(run)
    try:
        with pytest.raises(RunDirectoryInUseError) as refused:
            with runlock.hold(run, "sweep"):
                pytest.fail("entered a directory in use")
        assert str(refused.value) == (
            f"output directory {str(run)!r} is in use by pid 4242 on host elsewhere (sweep job: "
            "sweep.py --output_dir=run) since 2026-12-02 01:00:00 UTC; wait for it with --wait "
            "(wait=True), or choose another --output_dir")
        assert isinstance(refused.value, RunDirectoryError)  # exit 2, one line (common.run)
        assert "\n" not in str(refused.value)
    finally:
        other_releases(run, fd)


def test_a_holder_that_has_not_written_its_description_yet_is_still_a_holder(tmp_path,
                                                                             monkeypatch):
    monkeypatch.setattr(runlock, "READ_ATTEMPTS", 2)
    run = tmp_path / "run"
    run.mkdir()
    fd = os.open(run / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(RunDirectoryInUseError, match="in use by another process \\(it has "
                                                         "not written its description yet\\)"):
            with runlock.hold(run, "train"):
                pass
    finally:
        os.close(fd)


def test_the_lock_is_reentrant_in_its_process_and_nests(tmp_path):
    run = tmp_path / "run"
    with runlock.hold(run, "sweep"):
        with runlock.hold(run, "visualize"):  # the same directory again
            with runlock.hold(run / "variants" / "a", "prune"):  # a nested job's
                assert (run / "variants" / "a" / LOCK_FILE).exists()
            assert not (run / "variants" / "a").exists()
        # still held after the inner job returned: another process is refused
        fd = os.open(run / LOCK_FILE, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        assert json.loads((run / LOCK_FILE).read_text())["job"] == "sweep"
    assert not (run / LOCK_FILE).exists()


def test_another_thread_is_refused_like_another_process(tmp_path):
    run = tmp_path / "run"
    entered, leave = threading.Event(), threading.Event()

    def job():
        with runlock.hold(run, "sweep"):
            entered.set()
            leave.wait(10)

    thread = threading.Thread(target=job)
    thread.start()
    try:
        assert entered.wait(10)
        with pytest.raises(RunDirectoryInUseError, match=f"in use by pid {os.getpid()} "):
            with runlock.hold(run, "sweep"):
                pass
    finally:
        leave.set()
        thread.join(10)
    with runlock.hold(run, "sweep"):  # released: free again
        pass


def test_wait_says_so_once_and_goes_on_when_the_holder_ends(tmp_path):
    run = tmp_path / "run"
    fd = other_holds(run)
    release = threading.Timer(0.5, other_releases, (run, fd))
    lines = []
    start = time.perf_counter()
    release.start()
    try:
        with runlock.hold(run, "sweep", wait=True, log=lines.append):
            waited = time.perf_counter() - start
            assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
    finally:
        release.join()
    assert waited >= 0.4
    assert lines == [f"{run} is in use by pid 4242 on host elsewhere (sweep job: sweep.py "
                     "--output_dir=run) since 2026-12-02 01:00:00 UTC; waiting for it to finish"]


def test_a_lock_whose_holder_is_gone_is_taken_over_and_its_temporary_files_removed(tmp_path):
    run = tmp_path / "run"
    (run / "variants" / "busy").mkdir(parents=True)
    # What a SIGKILLed holder leaves: its description (the kernel dropped the flock) and the
    # temporary files of the atomic writes it was in.
    (run / LOCK_FILE).write_text(json.dumps(dict(OTHER, directory=os.path.realpath(run))))
    (run / ".results.csv.k2j3.tmp").write_text("half")
    (run / "variants" / ".model.keras.x1y2.tmp.keras").write_text("half")
    (run / "variants" / "results.tmp").write_text("a user's file: not of that pattern")
    (run / "variants" / "busy" / ".variant.json.abcd.tmp").write_text("being written")
    fd = other_holds(run / "variants" / "busy")  # a live job inside: its files are its own
    lines = []
    try:
        with runlock.hold(run, "sweep", log=lines.append):
            pass
    finally:
        other_releases(run / "variants" / "busy", fd)
    assert lines == [f"{run}: taking over the lock of pid 4242 on host elsewhere (sweep job: "
                     "sweep.py --output_dir=run) since 2026-12-02 01:00:00 UTC, which is gone; "
                     "removed 2 temporary file(s) it left"]
    assert not (run / ".results.csv.k2j3.tmp").exists()
    assert not (run / "variants" / ".model.keras.x1y2.tmp.keras").exists()
    assert (run / "variants" / "results.tmp").exists()
    assert (run / "variants" / "busy" / ".variant.json.abcd.tmp").exists()


def test_a_copied_lock_file_is_replaced_without_a_notice(tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / LOCK_FILE).write_text(json.dumps(dict(OTHER, directory="/somewhere/run")))
    lines = []
    with runlock.hold(copy, "sweep", log=lines.append):
        assert json.loads((copy / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert lines == []


def test_a_file_system_without_locks_runs_unlocked_with_one_line(tmp_path, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    lines = []
    with runlock.hold(tmp_path / "run", "train", log=lines.append):
        assert not (tmp_path / "run" / LOCK_FILE).exists()
    assert lines == [f"{tmp_path / 'run'}: this file system cannot lock files (No locks "
                     "available); running without a lock, so make sure no other job uses this "
                     "directory"]


def test_a_bad_output_dir_is_named_before_any_lock(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirectoryError, match="is a file; choose a directory"):
        with runlock.hold(tmp_path / "file", "train"):
            pass


def test_the_lock_file_is_no_part_of_the_run(tmp_path):
    run = tmp_path / "run"
    with runlock.hold(run, "prune"):
        prepare_run_dir(run, {"epochs": 1})  # a directory holding only the lock file is empty
        (run / "model.keras").write_text("x")
        prepare_run_dir(run, {"epochs": 2}, overwrite=True)  # emptied, the lock file kept
        assert sorted(os.listdir(run)) == [LOCK_FILE, "config.json"]


def test_the_chief_holds_a_multi_worker_runs_lock_and_the_other_workers_are_not_refused(
        tmp_path, monkeypatch):
    run = str(tmp_path / "run")
    fd = other_holds(run, dict(OTHER, job="prune"))  # the chief, another process
    try:
        with pytest.raises(RunDirectoryInUseError):  # a second chief: refused
            with runlock.job("default", run, "prune"):
                pass
        monkeypatch.setattr(distribute, "is_chief", lambda: False)
        monkeypatch.setattr(distribute, "_task", lambda: ("worker", 1))
        with runlock.job("default", run, "prune") as (_, own_dir):
            assert own_dir == run + ".worker1"  # writes its twin, locks that: not refused
            holder = json.loads(open(os.path.join(own_dir, LOCK_FILE)).read())
            assert holder["pid"] == os.getpid() and holder["directory"] == os.path.realpath(own_dir)
            with runlock.hold(os.path.join(own_dir, "baseline"), "train"):  # nested: its own
                pass
        with runlock.hold(run, "tune", shared=True):  # keras-tuner's workers: the chief's lock
            pass
    finally:
        other_releases(run, fd)


def test_a_script_locks_before_its_imports_and_its_job_re_enters_that_lock(tmp_path):
    run = tmp_path / "new" / "run"
    with runlock.before_imports(run, "sweep", "default"):
        with runlock.hold(run, "sweep"):  # the job's own lock: the script's, re-entered
            assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (tmp_path / "new").exists()  # made for the lock alone, parents too: removed
    with runlock.before_imports(run, "sweep", "multi_worker"):  # the chief is not known yet
        assert not run.exists()
