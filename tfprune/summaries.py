"""TensorBoard event files: what every run writes under ``<run>/tensorboard`` so that
``tensorboard --logdir`` on a run, or on a sweep (its baselines and variants are run directories
under it), shows every run side by side.

- ``callbacks``: losses and metrics per epoch (Keras's TensorBoard callback: train/ and
  validation/), and, while pruning, the sparsity of every kernel per epoch (sparsity/), as
  tfmot's PruningSummaries does for its own wrappers, here for every method (tfmot's masks,
  unit masks, channel masks: all are applied to the kernels, so zeros are what is counted).
- ``write_decisions``: a deciding pruner's decisions, per epoch, as text and scalars.
- ``write_images``: PNGs (the saliency and Grad-CAM grids) as images.
"""

import os

import numpy as np

from tfprune.keras import keras, tf

KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel")


def _kernel_tag(weight):
    """'conv1/kernel' of 'prune_low_magnitude_conv1/conv1/kernel:0' and of 'conv1/kernel:0'."""
    parts = weight.name.split(":")[0].split("/")
    return "/".join(parts[-2:])


def _kernels(model):
    return [w for w in model.weights if w.name.split(":")[0].split("/")[-1] in KERNEL_NAMES]


def kernel_sparsity(model):
    """{tag: fraction of zeros} of every kernel of ``model`` (wrapped or not), and of all of
    them together under "all_kernels"."""
    values = {_kernel_tag(w): w.numpy() for w in _kernels(model)}
    result = {tag: float(np.mean(v == 0)) for tag, v in values.items()}
    total = sum(v.size for v in values.values())
    result["all_kernels"] = sum(int(np.sum(v == 0)) for v in values.values()) / max(total, 1)
    return result


class SparsitySummaries(keras.callbacks.Callback):
    """At every epoch end: each kernel's sparsity, and all kernels' together, as scalars."""

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = log_dir
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "sparsity"))
        with self._writer.as_default():
            for tag, value in kernel_sparsity(self.model).items():
                tf.summary.scalar(f"sparsity/{tag}", value, step=epoch + 1)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def callbacks(log_dir, sparsity=False):
    """Callbacks writing per-epoch losses and metrics (and, with ``sparsity``, each kernel's
    sparsity) under ``log_dir``."""
    result = [keras.callbacks.TensorBoard(log_dir, histogram_freq=0, write_graph=False,
                                          update_freq="epoch", profile_batch=0)]
    return result + ([SparsitySummaries(log_dir)] if sparsity else [])


def write_decisions(log_dir, decisions):
    """A deciding pruner's decisions (dicts with epoch, layer, action, sparsity_before/after,
    reason), one markdown table per epoch as text, and each layer's sparsity after a decision
    as a scalar (decisions/)."""
    writer = tf.summary.create_file_writer(os.path.join(log_dir, "decisions"))
    by_epoch = {}
    for d in decisions:
        by_epoch.setdefault(int(d.get("epoch", 0)), []).append(d)
    with writer.as_default():
        for epoch, group in sorted(by_epoch.items()):
            lines = ["| layer | action | sparsity | reason |", "|---|---|---|---|"]
            for d in group:
                before, after = d.get("sparsity_before"), d.get("sparsity_after")
                change = (f"{before:.3f} -> {after:.3f}" if before is not None
                          and after is not None else "")
                reason = str(d.get("reason", "")).replace("|", "/")
                lines.append(f"| {d.get('layer', '')} | {d.get('action', '')} | {change} | "
                             f"{reason} |")
                if after is not None and d.get("layer"):
                    tf.summary.scalar(f"decisions/{d['layer']}/sparsity_after", after,
                                      step=epoch)
            tf.summary.text("decisions", "\n".join(lines), step=epoch)
    writer.close()


def write_images(log_dir, paths, step=0):
    """PNG files as TensorBoard images, each under its file's stem (images/)."""
    writer = tf.summary.create_file_writer(os.path.join(log_dir, "images"))
    with writer.as_default():
        for path in paths:
            image = tf.io.decode_png(tf.io.read_file(path), channels=4)
            tf.summary.image(os.path.splitext(os.path.basename(path))[0], image[None],
                             step=step)
    writer.close()


def read_events(log_dir):
    """{run: {tag: [(step, value), ...]}} of every event file under ``log_dir`` (a run is the
    directory of its files, relative to ``log_dir``: what ``tensorboard --logdir`` lists),
    read with tf.compat.v1.train.summary_iterator. Values: numbers for scalars, bytes for text,
    arrays otherwise (images: their encoded PNGs)."""
    runs = {}
    for directory, _, files in sorted(os.walk(log_dir)):
        for name in sorted(f for f in files if f.startswith("events.out.tfevents.")):
            run = runs.setdefault(os.path.relpath(directory, log_dir), {})
            for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
                for value in event.summary.value:
                    array = tf.make_ndarray(value.tensor) if value.HasField("tensor") else \
                        np.asarray(value.simple_value)
                    item = array.item() if array.ndim == 0 else array
                    run.setdefault(value.tag, []).append((int(event.step), item))
    return runs
