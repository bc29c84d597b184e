"""tfprune's recipe against the tfmot pruning tutorial's, same baseline, same epochs."""

import time

import numpy as np
import tensorflow_model_optimization as tfmot

from tfprune import training as train_lib
from tfprune.data import load_data
from tfprune.keras import keras
from tfprune.pruning import stats, strip
from tfprune.jobs.prune import PruneConfig, run_prune


def tutorial_recipe(baseline_path, target, epochs, seed=0):
    """https://www.tensorflow.org/model_optimization/guide/pruning/pruning_with_keras, verbatim
    but for the final sparsity: prune the whole model, PolynomialDecay(0.5 -> target) over the
    fine-tuning steps at tfmot's default frequency (100), Adam, batch 128, validation_split 0.1."""
    train_lib.set_seed(seed)
    data = load_data("digits")
    x, y = data.numpy("train")
    x_test, y_test = data.numpy("test")
    batch_size, validation_split = 128, 0.1
    end_step = int(np.ceil(len(x) * (1 - validation_split) / batch_size)) * epochs
    schedule = tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=0.50, final_sparsity=target,
                                                    begin_step=0, end_step=end_step)
    baseline = keras.models.load_model(baseline_path, compile=False)
    model = tfmot.sparsity.keras.prune_low_magnitude(baseline, pruning_schedule=schedule)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, validation_split=validation_split,
              callbacks=[tfmot.sparsity.keras.UpdatePruningStep()], verbose=0)
    wall = time.perf_counter() - start
    pruned = strip(model)
    pruned.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    _, accuracy = pruned.evaluate(x_test, y_test, verbose=0)
    summary = stats.summarize(pruned)
    return {"recipe": "tfmot tutorial", "epochs": epochs, "accuracy": float(accuracy),
            "achieved_sparsity": summary["sparsity"], "fine_tune_time_s": wall,
            "pruning_events": int(end_step // 100) + 1}


def tfprune_recipe(baseline_path, target, epochs, work_dir, seed=0):
    metrics = run_prune(PruneConfig(method="weight", schedule="polynomial", target_sparsity=target,
                                    fine_tune_epochs=epochs, baseline=baseline_path, seed=seed),
                        work_dir, overwrite=True, log=lambda _: None).metrics
    return {"recipe": "tfprune", "epochs": epochs, "accuracy": metrics["accuracy"],
            "achieved_sparsity": metrics["sparsity"], "fine_tune_time_s": metrics["fine_tune_time_s"],
            "pruning_events": metrics["schedule_steps"]["end_step"]
            // metrics["schedule_steps"]["frequency"] + 1}
