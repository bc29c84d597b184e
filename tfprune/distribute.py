"""Distribution strategies by name, the process's strategy, the global batch, and where each
worker of a multi-worker run writes.

Strategies (``STRATEGIES``):

- ``default``: one device (the GPU when there is one, else the CPU).
- ``mirrored``: ``tf.distribute.MirroredStrategy`` over this machine's GPUs, or over its logical
  CPU devices when it has no GPU (``split_cpu`` makes several; the tests use two).
- ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy`` configured by the TF_CONFIG
  environment variable (``check_tf_config`` reads it before anything trains).

The batch size a user gives is per replica: ``global_batch`` multiplies it by the replicas.

Every worker of a multi-worker run executes the whole job: training and evaluation are collective
(each step needs every worker), so they run on all workers with the same data and seed, and
callbacks that decide (the deciding pruners) decide the same on every worker from the same
synchronized weights. Only the chief writes into the run directory. Each other worker writes
the same files into a twin directory of its own (``<dir>.worker<k>``, as Keras does with its
``workertemp_<k>`` directories; ``writes_here``), which starts as a copy of the chief's directory
(so both skip the stages the chief finished) and which its job removes when it finishes
(``finish``). Every worker reads the checkpoints from the chief's directory (``shared``): Keras's
BackupAndRestore restores every worker from ``<backup>/chief`` (and has the other workers write
their share of each save to ``<backup>/workertemp_<k>``, removed after it). When one worker dies
the others stop with an error; starting every worker again with the same command resumes from
the chief's last epoch. The directory must be one every worker sees (one machine, or a shared
filesystem).
"""

import contextlib
import json
import os
import shutil
import time

from tfprune import io
from tfprune.errors import TfpruneError
from tfprune.lazy import tf
from tfprune.registry import Registry

STRATEGIES = Registry("strategy")

_state = {"name": None, "strategy": None}  # the strategy this process's jobs run under
_twins = {}  # twin root -> chief root (this process's, on a non-chief worker)
# Checkpoint directories (training.fit's backup_dir): every worker reads the chief's own.
_CHECKPOINT_DIRS = ("backup", "scratch_backup")

TF_CONFIG_EXAMPLE = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}\'')


def _mirrored():
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


def _multi_worker():
    check_tf_config()
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as err:  # TensorFlow already initialized: too late for collectives
        raise TfpruneError(
            "--strategy=multi_worker must be chosen before TensorFlow runs anything in the "
            f"process (start the job with it; TensorFlow said: {err})") from None


STRATEGIES.register("default", lambda: tf.distribute.get_strategy())
STRATEGIES.register("mirrored", _mirrored)
STRATEGIES.register("multi_worker", _multi_worker)


def check_tf_config(environ=None):
    """The TF_CONFIG of a multi-worker run, parsed; a clear error when missing or malformed."""
    raw = (os.environ if environ is None else environ).get("TF_CONFIG")
    if not raw:
        raise TfpruneError(f"--strategy=multi_worker needs the TF_CONFIG environment variable "
                           f"on every worker, e.g. {TF_CONFIG_EXAMPLE}")
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        members = {kind: list(cluster[kind]) for kind in ("chief", "worker") if kind in cluster}
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as err:
        raise TfpruneError(f"TF_CONFIG must be JSON with a cluster (chief/worker address "
                           f"lists) and a task (type, index), e.g. {TF_CONFIG_EXAMPLE}; got "
                           f"{raw!r} ({type(err).__name__}: {err})") from None
    if not members:
        raise TfpruneError(f"TF_CONFIG's cluster lists no 'worker' or 'chief' addresses: {raw!r}")
    for address in (a for addresses in members.values() for a in addresses):
        if not isinstance(address, str) or not address.rpartition(":")[2].isdigit():
            raise TfpruneError(f"TF_CONFIG's cluster addresses must be 'host:port', got "
                               f"{address!r} in {raw!r}")
    if kind not in members or not 0 <= index < len(members[kind]):
        raise TfpruneError(f"TF_CONFIG's task {kind!r} {index} is not in its cluster "
                           f"{json.dumps(members)}")
    return config


def check_strategy(name):
    """A registered strategy name; multi_worker also needs a valid TF_CONFIG (checked here,
    before any training)."""
    STRATEGIES.validate(name)
    if name == "multi_worker":
        check_tf_config()
    return name


def split_cpu(count):
    """Make ``count`` logical CPU devices (before TensorFlow initializes), so ``mirrored`` has
    replicas on a machine without GPUs; returns False when TensorFlow was already initialized
    with another split."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    except RuntimeError:
        return len(tf.config.list_logical_devices("CPU")) == count
    return True


def start(name="default"):
    """Make ``name`` this process's strategy (reused when it already is) and return it. A
    multi-worker strategy is made once per process: switching to or from it is an error."""
    check_strategy(name)
    if _state["name"] == name:
        return _state["strategy"]
    if "multi_worker" in (name, _state["name"]) and _state["name"] is not None:
        raise TfpruneError(f"this process already ran under the {_state['name']!r} strategy; "
                           f"--strategy={name} needs a process of its own")
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialized
            pass
    _state["strategy"], _state["name"] = STRATEGIES.get(name)(), name
    return _state["strategy"]


def current():
    """The strategy ``start`` made (TensorFlow's default strategy before that)."""
    return _state["strategy"] or tf.distribute.get_strategy()


def replicas():
    return current().num_replicas_in_sync


def global_batch(per_replica, strategy=None):
    """The batch the data pipeline yields: ``per_replica`` x the replicas in sync (of the named
    ``strategy``, started if it is not the process's yet; else of the current one)."""
    count = start(strategy).num_replicas_in_sync if strategy else replicas()
    return None if per_replica is None else int(per_replica) * count


def _task():
    if _state["name"] != "multi_worker":  # (without touching TensorFlow)
        return None, None
    resolver = getattr(current(), "cluster_resolver", None)
    if resolver is None:
        return None, None
    return resolver.task_type, resolver.task_id


def is_multi_worker():
    """True when this process runs under the multi-worker strategy."""
    return _state["name"] == "multi_worker"


def is_chief():
    """True unless this process is a non-chief worker of a multi-worker run."""
    if _state["name"] != "multi_worker":
        return True
    return bool(current().extended.should_checkpoint)


def worker_label():
    kind, index = _task()
    return "" if kind is None else f"[{kind} {index}] "


def _twin_of(path):
    path = os.path.abspath(path)
    for twin, chief in _twins.items():
        if path == twin or path.startswith(twin + os.sep):
            return twin, chief
    return None, None


def writes_here(output_dir):
    """Where this process writes a run meant for ``output_dir``: the directory itself on the
    chief (and without multi-worker), its twin on another worker. A new twin starts as a copy
    of the chief's directory as it is now (before any training step, which needs every worker),
    checkpoints left out: a worker restarted after a failure then finds exactly the stages the
    chief finished, and both skip and resume the same ones."""
    if output_dir is None or is_chief() or _twin_of(output_dir)[0]:
        return output_dir
    kind, index = _task()
    chief = os.path.abspath(output_dir)
    twin = f"{chief.rstrip(os.sep)}.{kind}{index}"
    if os.path.isdir(chief):
        _copy_live(chief, twin)
    else:
        shutil.rmtree(twin, ignore_errors=True)  # an earlier attempt's: the chief's state counts
    _twins[twin] = chief
    return twin


def _copy_present(source, target):
    try:
        return shutil.copy2(source, target)
    except FileNotFoundError:  # renamed over or removed by the chief since it was listed
        return target


def _copy_live(chief, twin, attempts=5):
    """Copy ``chief`` to ``twin`` (replaced if there) while the chief may still be writing
    there: its temporary files and checkpoints are left out, a file gone since it was listed is
    skipped, and a directory gone mid-copy makes the copy start again."""
    ignore = shutil.ignore_patterns(io.TEMP_PATTERN, *_CHECKPOINT_DIRS)
    for attempt in range(attempts):
        shutil.rmtree(twin, ignore_errors=True)
        try:
            shutil.copytree(chief, twin, ignore=ignore, copy_function=_copy_present)
            return
        except shutil.Error:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)


def shared(path):
    """The chief's version of ``path`` (a checkpoint directory every worker reads)."""
    twin, chief = _twin_of(path)
    if twin is None:
        return path
    return chief + os.path.abspath(path)[len(twin):]


def finish(output_dir):
    """At the end of a job: remove this worker's twin of ``output_dir`` (nothing on the chief,
    nor for a directory inside a twin, which its own job's ``finish`` removes)."""
    path = os.path.abspath(output_dir)
    if path in _twins:
        shutil.rmtree(path, ignore_errors=True)
        del _twins[path]


@contextlib.contextmanager
def job(name, output_dir):
    """A job run under strategy ``name`` into ``output_dir``: yields (the strategy, where this
    process writes: ``writes_here``); the twin is removed (``finish``) when the job returns,
    kept when it raises, so a restarted worker resumes from the same state."""
    strategy = start(name)
    own_dir = writes_here(output_dir)
    yield strategy, own_dir
    finish(own_dir)


def barrier():
    """Wait until every worker gets here (a no-op without multi-worker): a sum across workers."""
    if _state["name"] != "multi_worker":
        return
    strategy = current()
    if "barrier" not in _state:
        _state["barrier"] = tf.function(lambda: strategy.reduce(
            tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None))
    _state["barrier"]()
