"""Convert and measure a sweep's finished variants in a second process while the next variant
fine-tunes.

Fine-tuning a small model leaves a core partly idle, and a variant's eight conversions and its
interpreter accuracy take seconds of their own. With ``processes=True`` a ``Deployer`` hands
each finished variant (its saved model's path, never the model itself) to one spawned worker
process, which loads the model and the data and runs ``variant.deploy``; the sweep goes on
pruning meanwhile. The variant's own plots (run_prune's ``draw``) are drawn there too. The
.tflite bytes are the same as in-process (conversion starts from the saved model, which is the
deployed model's exact copy), and so are the rows but their times.
Results come back in submission order, and at most ``depth`` variants wait, so an interruption
loses at most those (their variant.json is not written yet: a rerun redoes them).
With ``processes=False`` the same calls run in-process, one after the other.
The worker ends with the sweep however the sweep ends (tfprune/lifeline.py: SIGKILL included),
leaving no temporary file; multiprocessing's resource tracker ends when both have.
"""

import collections
import concurrent.futures
import contextlib
import dataclasses
import importlib
import multiprocessing
import os
import signal
import sys
import threading
import types

from tfprune import lifeline
from tfprune.jobs import variant as variant_lib
from tfprune.models import load_model


@dataclasses.dataclass
class Deployment:
    """What ``variant.deploy`` needs for one variant, picklable: the model by path, the data
    by a loader (``load_data()`` -> Data; the same split and order in any process)."""

    model_path: str
    kind: str
    out_dir: str
    key: object
    load_data: object
    options: dict  # deploy's keyword arguments but model, kind, data, out_dir and key
    plots: list = dataclasses.field(default_factory=list)  # (plot, args, kwargs) to draw too
    # Deployed from the model in memory, in this process: a quantization-aware model, which
    # tfmot cannot save and load back whole (compression/qat.py).
    in_process: bool = False


WORKER_EXIT_S = 10  # the longest a stopped worker is waited for (it exits within a second)

_DATA = {}  # in a worker process: the data of each loader, loaded once


def run(deployment, model=None, data=None):
    """The variant's rows (and its plots drawn): ``model`` and ``data`` when the caller holds
    them, else loaded."""
    if data is None:
        key = repr(deployment.load_data)
        if key not in _DATA:
            _DATA.clear()  # one seed's data at a time
            _DATA[key] = deployment.load_data()
        data = _DATA[key]
    if model is None:
        model = load_model(deployment.model_path, f"{deployment.kind} model")
    rows = variant_lib.deploy(model, deployment.kind, data, deployment.out_dir,
                              key=deployment.key, **deployment.options)
    for plot, args, kwargs in deployment.plots:
        plot(*args, **kwargs)
    return rows


def _start_worker(parent_pid, started_by_main_thread):
    """In the worker: it ends with the sweep (and on SIGTERM, which the sweep sends to stop it);
    Ctrl-C is the sweep's to handle (it stops the worker), not the worker's; the GPUs are the
    sweep's too (converting and the interpreter need none)."""
    lifeline.bind(parent_pid, started_by_main_thread)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from tfprune.keras import tf

    try:
        tf.config.set_visible_devices([], "GPU")
    except (RuntimeError, ValueError):  # devices already initialized: nothing to hide then
        pass


def _warm_up():
    """Import TensorFlow and tfprune in the worker while the caller trains its baseline."""
    importlib.import_module("tfprune.tflite.measure")


@contextlib.contextmanager
def _main_hidden():
    """While the worker starts: an empty ``__main__``, so the worker does not import the
    caller's script (as spawn would, running an unguarded script's sweep a second time)."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class Deployer:
    """``submit(deployment, done)``: run the deployment (in the worker, or now) and call
    ``done(deployment, rows)`` in the caller's process, in submission order, from ``submit``,
    ``poll`` or ``drain``. Use it as a context manager: leaving it on an error stops the
    worker; leaving it normally drains what is left.

    The worker is only a way to go faster: when it fails on a variant (it cannot load a data
    set or a layer registered in the caller's script, it was killed, ...), ``log`` says why,
    the worker stops, and that variant and every later one are deployed in this process, where
    a real error is raised as it would be without a worker."""

    def __init__(self, processes=True, depth=2, log=None):
        self.processes = processes
        self.depth = depth
        self.log = log or (lambda _: None)
        self._pool = None
        self._pending = collections.deque()  # (deployment, future, done)

    def __enter__(self):
        if self.processes:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(os.getpid(), threading.current_thread() is threading.main_thread()))
            # The worker process starts with its first task, from this thread (Python 3.11:
            # submit spawns it; a pool without max_tasks_per_child never spawns another).
            with _main_hidden():
                self._pool.submit(_warm_up)
        return self

    def __exit__(self, exc_type, exc, tb):
        clean = False
        try:
            if exc_type is None:
                self.drain()
                clean = True
        finally:
            self._stop(wait=clean)
        return False

    def _stop(self, wait):
        if self._pool is not None:
            if not wait:
                processes = list((self._pool._processes or {}).values())
                for process in processes:
                    process.terminate()  # nothing of an interrupted sweep runs on
                for process in processes:
                    process.join(WORKER_EXIT_S)  # gone (its temporary files removed) on return
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None

    def submit(self, deployment, done, model=None, data=None):
        while self._pool is not None and len(self._pending) >= self.depth:
            self._finish_first()
        if self._pool is not None and not deployment.in_process:
            try:
                future = self._pool.submit(run, deployment)
            except (concurrent.futures.process.BrokenProcessPool, RuntimeError) as err:
                self._fall_back(deployment, err)  # the worker died (a kill, out of memory)
            else:
                self._pending.append((deployment, future, done))
                self.poll()
                return
        # In this process, after the ones still waiting (in order).
        self.drain()
        done(deployment, run(deployment, model, data))

    def poll(self):
        """Hand over the results that are ready (in order), without waiting."""
        while self._pending and self._pending[0][1].done():
            self._finish_first()

    def drain(self):
        while self._pending:
            self._finish_first()

    def _finish_first(self):
        deployment, future, done = self._pending.popleft()
        try:
            rows = future.result() if self._pool is not None else None
        except Exception as err:  # noqa: BLE001 - any failure: this process does it instead
            self._fall_back(deployment, err)
            rows = None
        done(deployment, rows if rows is not None else run(deployment))

    def _fall_back(self, deployment, err):
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        self.log(f"the second process could not deploy {deployment.out_dir} "
                 f"({type(err).__name__}: {reason}); deploying in this process from now on")
        self._stop(wait=False)
