"""The training job: ``TrainConfig`` and ``train_baseline`` into a run directory.

Writes config.json, metrics.json (last: its presence marks the run finished), history.json,
model.keras, plots/training.png and, for text data, tokenizer.json (the vocabulary and sequence
length the model is fed); a finished run is reused, an interrupted one resumes from its last
epoch (BackupAndRestore).
"""

import os
import shutil
import time

from tfprune import distribute, io, precision, training
from tfprune.jobs.configs.train import (  # noqa: F401  (jobs.train.TrainConfig, ...)
    MODEL_FILE, TrainConfig, model_path)
from tfprune.jobs import runlock
from tfprune.jobs.rundir import prepare_run_dir, read_marker
from tfprune.keras import keras, tf
from tfprune.models import build_model
from tfprune.optimizers import make_optimizer
from tfprune.results import plots


@precision.restores_policy
def train_baseline(config, output_dir, overwrite=False, log=print, wait=False):
    """Train ``config`` into ``output_dir``; skip a finished run, resume an interrupted one.
    ``mixed_precision`` trains under mixed_float16; the model is saved float32.

    Returns the metrics dict (also written to output_dir/metrics.json). Under
    ``config.strategy`` multi_worker every worker trains; only the chief writes ``output_dir``
    (distribute.py). The job holds ``output_dir``'s lock while it runs (runlock.py): another
    job's directory is refused, or with ``wait`` waited for.
    """
    with runlock.job(config.strategy, output_dir, "train", wait, log) as (strategy, own_dir):
        return _train_baseline(config, own_dir, strategy, overwrite, log)


def _train_baseline(config, output_dir, strategy, overwrite, log):
    same_run = prepare_run_dir(output_dir, config.record(), overwrite=overwrite,
                               marker="metrics.json")
    metrics_path = os.path.join(output_dir, "metrics.json")
    model_file = os.path.join(output_dir, MODEL_FILE)
    metrics = read_marker(metrics_path, log) if same_run else None
    if metrics is not None and os.path.exists(model_file):
        log(f"{output_dir} already holds this finished run; reusing it")
        return metrics
    backup_dir = os.path.join(output_dir, "backup")
    if not same_run and os.path.exists(backup_dir):
        shutil.rmtree(backup_dir)  # a checkpoint of a different configuration

    training.set_seed(config.seed, config.deterministic)
    precision.set_mixed_precision(config.mixed_precision)
    data = config.data(distribute.global_batch(config.batch_size), config.seed, config.augment,
                       log)
    with strategy.scope():
        model = build_model(config.model, data.input_shape, data.num_classes,
                            dataset=data.name, vocabulary_size=data.vocabulary_size)
        optimizer = make_optimizer(
            config.optimizer, config.learning_rate, config.momentum, config.weight_decay,
            config.lr_schedule, decay_steps=config.epochs * data.steps_per_epoch)
        training.compile_model(model, optimizer)
    log(f"training {config.model} on {config.dataset} ({data.sizes['train']} train / "
        f"{data.sizes['validation']} validation / {data.sizes['test']} test examples), "
        f"{model.count_params():,} parameters, seed {config.seed}, "
        f"{strategy.num_replicas_in_sync} replica(s), global batch {data.batch_size}")
    start = time.perf_counter()
    # Checkpointed every epoch: an interrupted run resumes exactly where it stopped.
    history = training.fit(model, data, config.epochs, log=log, backup_dir=backup_dir,
                           tensorboard_dir=os.path.join(output_dir, "tensorboard"))
    train_time = time.perf_counter() - start
    test_loss, test_accuracy = training.evaluate(model, data.test)
    training.save_model(precision.float32_copy(model), model_file)
    tokenizer_file = data.save_tokenizer(output_dir)
    io.write_json(os.path.join(output_dir, "history.json"), history.history)
    plots.plot_history(history.history, os.path.join(output_dir, "plots", "training.png"),
                       title=f"{config.model} on {config.dataset} (seed {config.seed})")
    metrics = {
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "val_accuracy": float(history.history["val_accuracy"][-1]),
        "params": int(model.count_params()),
        "trainable_params": int(sum(int(tf.size(w)) for w in model.trainable_weights)),
        "train_time_s": train_time,
        "precision": precision.trained_under(model),
        "replicas": strategy.num_replicas_in_sync, "global_batch_size": data.batch_size,
        "epochs": config.epochs,
        "epochs_run_this_time": history.epochs_run_this_time,
        "model_path": MODEL_FILE,  # relative to the run directory: it can be moved
        "tokenizer": tokenizer_file,  # text data: the vocabulary and sequence length fed
        "dataset_sizes": data.sizes,
        "versions": {"tensorflow": tf.__version__, "tf_keras": keras.__version__},
        "devices": [d.name for d in tf.config.list_logical_devices()],
    }
    metrics = io.to_jsonable(metrics)  # what a rerun reads back
    io.write_json(metrics_path, metrics)  # written last: its presence marks the run finished
    shutil.rmtree(backup_dir, ignore_errors=True)
    log(f"test accuracy {test_accuracy:.4f}, loss {test_loss:.4f}, trained in {train_time:.1f}s")
    return metrics


