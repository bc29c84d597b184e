"""Training primitives: seeds, fit with progress (and checkpoints every worker of a
distributed run shares: distribute.py), evaluation and saving (mixed precision: precision.py).
No configs and no run directories (those are jobs/)."""

import contextlib
import os
import pickle
import threading
import time

from tfprune import distribute, io, summaries
from tfprune.errors import TfpruneError
from tfprune.keras import keras, tf


def set_seed(seed, deterministic=True):
    """Seed Python, NumPy and TensorFlow; make TF ops deterministic when asked."""
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def compile_model(model, optimizer=None):
    """Compile for sparse categorical cross-entropy and accuracy (Adam 1e-3 when no optimizer)."""
    model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class ProgressLogger(keras.callbacks.Callback):
    """One line per epoch: metrics, elapsed time and an estimate of the time left."""

    def __init__(self, epochs, log=print, prefix=""):
        super().__init__()
        self.epochs = epochs
        self.log = log
        self.prefix = prefix
        self._start = None

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        self._first_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch is None:
            self._first_epoch = epoch  # > 0 when BackupAndRestore resumed a run

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._start
        done = epoch + 1 - self._first_epoch
        left = elapsed / done * (self.epochs - epoch - 1)
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in sorted((logs or {}).items())
                            if isinstance(v, (int, float)))
        self.log(f"{self.prefix}epoch {epoch + 1}/{self.epochs}  {metrics}  "
                 f"[{elapsed:.1f}s elapsed, ~{left:.1f}s left]")


class EpochProgress(keras.callbacks.Callback):
    """Inside an epoch that runs longer than ``interval`` seconds, a line at most every
    ``interval`` seconds: "epoch 3/20: 120/469 batches, 12s elapsed, ~35s left".

    Plain lines on the log's stream (not a bar redrawn with carriage returns): they read the
    same in a terminal, a log file and CI's output, and a short epoch (every test's) has none.
    A thread wakes every second (a quarter interval when shorter) and reads the optimizer's
    step count, so the callback needs no batch hooks and whole-epoch calls of the train
    function (``_whole_epochs_per_call``) stay as they are: the same calls and the same
    weights, with or without it; it holds no state a resume needs. Only the chief of a
    multi-worker run prints. ``clock`` and ``steps_done`` are there for tests (a fake clock;
    the steps done this epoch)."""

    def __init__(self, epochs, log=print, prefix="", interval=10.0, clock=time.monotonic,
                 steps_done=None):
        super().__init__()
        self.epochs, self.log, self.prefix, self.interval = epochs, log, prefix, interval
        self.clock = clock
        self._steps_done = steps_done or self._optimizer_steps_done
        self._lock = threading.Lock()
        self._epoch = None  # the epoch running, None between epochs
        self._first_step = self._start = self._last = 0
        self._stop = threading.Event()
        self._thread = None

    def _optimizer_steps_done(self):
        return int(self.model.optimizer.iterations.numpy()) - self._first_step

    def on_train_begin(self, logs=None):
        if distribute.is_chief():
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, daemon=True,
                                            name="tfprune-epoch-progress")
            self._thread.start()

    def on_epoch_begin(self, epoch, logs=None):
        first = 0 if self.model is None else int(self.model.optimizer.iterations.numpy())
        with self._lock:
            self._epoch, self._first_step = epoch, first
            self._start = self._last = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        with self._lock:  # a line being printed is finished before the epoch's own line
            self._epoch = None

    def on_train_end(self, logs=None):
        self.stop()

    def stop(self):
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def _watch(self):
        while not self._stop.wait(min(1.0, self.interval / 4)):
            self.tick()

    def tick(self):
        """Print the line when ``interval`` has passed since the epoch began or the last line."""
        with self._lock:
            now = self.clock()
            if self._epoch is None or now - self._last < self.interval:
                return
            self._last = now
            elapsed = now - self._start
            try:
                done = self._steps_done()
            except Exception:  # noqa: BLE001 (a count it cannot read: the time alone)
                done = None
            steps = (getattr(self, "params", None) or {}).get("steps")
            line = f"{self.prefix}epoch {self._epoch + 1}/{self.epochs}: "
            if done is None:
                line += f"{elapsed:.0f}s elapsed"
            elif steps and done >= steps:
                line += f"{steps}/{steps} batches, {elapsed:.0f}s elapsed, validating"
            else:
                line += f"{done}/{steps or '?'} batches, {elapsed:.0f}s elapsed"
                if steps and done:
                    line += f", ~{elapsed / done * (steps - done):.0f}s left"
            self.log(line)


class _Progress(keras.callbacks.Callback):
    """At every epoch end, after the other callbacks and before the checkpoint is saved (so it
    always covers at least the checkpoint's epochs): the history so far to progress.json and
    the state of the stateful callbacks (``get_state``) at this epoch and the one before to
    callbacks.pkl, so a resume from either checkpoint finds its own."""

    def __init__(self, backup_dir, history, stateful, states):
        super().__init__()
        self.backup_dir, self.history, self.stateful, self.states = (backup_dir, history,
                                                                      stateful, states)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, [])[epoch:] = [float(value)]
        if self.stateful:
            self.states[epoch + 1] = [c.get_state() for c in self.stateful]
            for old in [e for e in self.states if e < epoch]:
                del self.states[old]
        if not distribute.is_chief():  # the other workers resume from the chief's files
            return
        if self.stateful:
            io.write_bytes(os.path.join(self.backup_dir, "callbacks.pkl"),
                           pickle.dumps(self.states))
        io.write_json(os.path.join(self.backup_dir, "progress.json"),
                      {"epochs_done": epoch + 1, "history": self.history})


def checkpointed_epochs(backup_dir):
    """Epochs finished in the BackupAndRestore checkpoint under ``backup_dir`` (0 when none)."""
    latest = tf.train.latest_checkpoint(os.path.join(backup_dir, "chief"))
    if latest is None:
        return 0
    reader = tf.train.load_checkpoint(latest)
    return int(reader.get_tensor("ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE")) + 1


def _damaged(backup_dir, what):
    return TfpruneError(f"the checkpoint in {backup_dir!r} is ahead of its {what}; delete that "
                        "directory to start over")


def _callback_states(backup_dir, done, stateful):
    """{epochs done: [state per stateful callback]} of an interrupted run (empty when none)."""
    if not stateful or not done:
        return {}
    try:
        with open(os.path.join(backup_dir, "callbacks.pkl"), "rb") as f:
            states = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError) as e:
        raise _damaged(backup_dir, f"callback states ({e})") from None
    if len(states.get(done, ())) != len(stateful):
        raise _damaged(backup_dir, "callback states (callbacks.pkl)")
    return {done: states[done]}


def _resume_state(backup_dir):
    """(epochs done, history of those epochs) of an interrupted run in ``backup_dir``."""
    done = checkpointed_epochs(backup_dir)
    if not done:
        return 0, {}
    try:
        history = io.read_json(os.path.join(backup_dir, "progress.json"))["history"]
    except (OSError, ValueError, KeyError, TypeError):
        history = {}
    if any(len(values) < done for values in history.values()) or not history:
        # The history is written before each checkpoint, so this means a damaged backup.
        raise _damaged(backup_dir, "history (progress.json)")
    return done, {key: values[:done] for key, values in history.items()}


class _History:
    def __init__(self, history, run_this_time):
        self.history = history
        self.epochs_run_this_time = run_this_time


def fit(model, data, epochs, callbacks=(), log=print, prefix="", backup_dir=None,
        tensorboard_dir=None, sparsity_summaries=False):
    """model.fit on data.train with validation, printing one progress line per epoch (and,
    inside an epoch longer than 10 s, one every 10 s: ``EpochProgress``).

    With ``backup_dir`` the run checkpoints model, optimizer (and with it the step of the
    learning-rate schedule) and the history at every epoch end, and a rerun resumes exactly:
    the shuffled order of each remaining epoch is the one the uninterrupted run would have
    drawn (data.train's shuffle draws a new order per pass, so the finished passes are replayed
    first), and the returned history covers the whole run. Callbacks that hold state of their
    own outside the model's variables provide ``get_state()`` (picklable) and
    ``set_state(state)``; it is saved with every checkpoint and restored before a resume.
    With ``tensorboard_dir``, losses and metrics per epoch (and with ``sparsity_summaries``
    each kernel's sparsity) go to TensorBoard event files there (summaries.py).
    """
    in_epoch = EpochProgress(epochs, log=log, prefix=prefix)  # before the epoch's own line
    callbacks = list(callbacks) + [in_epoch, ProgressLogger(epochs, log=log, prefix=prefix)]
    if backup_dir is not None:
        backup_dir = distribute.shared(backup_dir)  # every worker restores the chief's
        distribute.barrier()  # the chief's clean-up before this stage is done on every worker
    if tensorboard_dir is not None:
        callbacks += summaries.callbacks(tensorboard_dir, sparsity=sparsity_summaries)
    history = None
    if backup_dir is not None:
        stateful = [c for c in callbacks if hasattr(c, "get_state")]
        done, history = _resume_state(backup_dir)
        states = _callback_states(backup_dir, done, stateful)
        if done:
            log(f"{prefix}resuming after epoch {done}/{epochs} from {backup_dir}")
            for callback, state in zip(stateful, states.get(done, ())):
                callback.set_state(state)
            for _ in range(done):  # one pass per finished epoch: the next order is the same
                for _ in data.train.take(1):
                    pass
        callbacks += [_Progress(backup_dir, history, stateful, states),
                      keras.callbacks.BackupAndRestore(backup_dir)]
    with _whole_epochs_per_call(model, data.train, callbacks) as chunks:
        try:
            result = model.fit(data.train, validation_data=data.validation, epochs=epochs,
                               verbose=0, callbacks=callbacks + chunks)
        finally:
            in_epoch.stop()  # also when fit raised (on_train_end is not called then)
    distribute.barrier()  # no worker removes the shared checkpoint while another still reads it
    # With a backup, the history of the whole run (earlier runs' epochs included).
    return _History(result.history if history is None else history, len(result.epoch))


def _batch_hooks(callback):
    return getattr(callback, "_implements_train_batch_hooks", lambda: True)()


class _Chunks(keras.callbacks.Callback):
    """Under whole-epoch calls, ends each call of the train function before the next step at
    which a callback needs its batch hooks (its ``next_batch_step(step)``: the first step after
    ``step`` it needs, None for none): steps_per_execution is set, before the epoch and after
    each call, to the steps from the optimizer's iterations to that step, at most an epoch
    (Keras ends a call at the epoch's end itself). Keras reads the count before each call."""

    def __init__(self, counter, steps, hooked):
        super().__init__()
        self.counter, self.steps, self.hooked = counter, steps, hooked

    def _set(self):
        step = int(keras.backend.get_value(self.model.optimizer.iterations))
        needed = [n for n in (c.next_batch_step(step) for c in self.hooked) if n is not None]
        self.counter.assign(min([self.steps] + [n - step for n in needed]))

    def on_epoch_begin(self, epoch, logs=None):
        self._set()

    def on_train_batch_end(self, batch, logs=None):
        self._set()


@contextlib.contextmanager
def _whole_epochs_per_call(model, dataset, callbacks):
    """When no callback acts per batch (a baseline's training, weight and unit pruning, whose
    pruning step and masks are updated inside the compiled step: progress, checkpoints and
    summaries per epoch), run each epoch's steps in one call of the compiled train function
    (steps_per_execution): the same steps in the same order, so the same weights, without a
    Python round trip per batch. A callback with batch hooks that names the steps it needs them
    at (``next_batch_step``: the channel method's selection) gets calls that end there (yields
    the callback that sets their lengths: pass it to fit too). Not under a distribution
    strategy, nor for a model that was compiled for more already; yields [] then."""
    steps = int(dataset.cardinality())
    counter = getattr(model, "_steps_per_execution", None)
    distributed = tf.distribute.has_strategy() or \
        getattr(model, "_distribution_strategy", None) is not None  # compiled in a scope
    hooked = [c for c in callbacks if _batch_hooks(c)]
    if (steps <= 1 or counter is None or int(counter.numpy()) != 1 or distributed
            or any(not hasattr(c, "next_batch_step") for c in hooked)):
        yield []
        return
    counter.assign(steps)  # > 1 when Keras traces the train function: its loop reads the count
    model.train_function = None  # made again for the new count (and after, for one step)
    try:
        yield [_Chunks(counter, steps, hooked)] if hooked else []
    finally:
        counter.assign(1)
        model.train_function = None


def evaluate(model, dataset):
    """(loss, accuracy) of a Keras classifier on a batched dataset (compiled here if needed)."""
    if model.compiled_loss is None:
        compile_model(model)
    loss, accuracy = model.evaluate(dataset, verbose=0)
    return float(loss), float(accuracy)


def save_model(model, path):
    """Save in the Keras v3 format, atomically (temp file + rename)."""
    with io.atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
    return path
