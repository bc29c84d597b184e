"""The sensitivity job's config: ``SensitivityConfig``, validated on construction."""

import dataclasses

from tfprune import checks
from tfprune.declare import option
from tfprune.jobs.configs.base import JobConfig
from tfprune.jobs.configs.parts import (BatchFields, DatasetFields, DeterministicFields,
                                        LayerFields, ModelFields, SeedFields, check_zoo_model,
                                        resolve_augmentation, resolve_dataset_defaults)
from tfprune.jobs.configs.train import BaselineFields
from tfprune.pruning import allocation
from tfprune.pruning.methods import ONE_SHOT, check_one_shot


LAYER_METHODS = ("weight", "unit")  # per-layer curves and targets; channel: per group


@dataclasses.dataclass
class SensitivityConfig(JobConfig, DeterministicFields, LayerFields, BaselineFields, ModelFields,
                        SeedFields, BatchFields, DatasetFields):
    methods: tuple = option(
        ("weight", "unit"), f"One-shot methods for the whole-model curves: {', '.join(ONE_SHOT)}"
        "; weight and unit also get per-layer curves and layer-wise targets.")
    sparsities: tuple = option(allocation.GRID, "Sparsities of the curves, in [0, 1) (0 is "
                               "always included).", items=float)
    samples: int = option(2000, "Validation images for the per-layer curves and the int4 "
                          "costs.", lower=1)
    targets: tuple = option((0.8, 0.9), "Global sparsities to derive layer-wise targets for.",
                            items=float)
    channel_groups: bool = option(False, "Also prune each channel group alone (coupled "
                                  "channels across layers).")
    quantization: bool = option(True, "Also put each layer's weights alone at int4 (LiteRT "
                                "interpreter).")

    def resolve(self):
        self.resolve_dataset()
        resolve_dataset_defaults(self, baseline_epochs="epochs", batch_size="batch_size")
        self.methods = tuple(dict.fromkeys(self.methods))
        checks.check_not_empty("methods", self.methods, f"give some of "
                               f"{', '.join(ONE_SHOT)}")
        for method in self.methods:
            check_one_shot(method)
        self.sparsities = allocation.check_grid(self.sparsities)
        self.targets = tuple(sorted({checks.check_sparsity("targets", t) for t in self.targets}))
        if self.baseline != "train":
            checks.check_file("baseline", self.baseline,
                              "'train' or the path of a saved Keras model (.keras or .h5)")
        else:
            check_zoo_model(self.model, self.dataset, self.image_size)
        if isinstance(self.layers, str):
            self.layers = [n.strip() for n in self.layers.split(",") if n.strip()]
        self.layers = tuple(self.layers) if self.layers else None
        self.augment = resolve_augmentation(self.augment, self.dataset, self.model,
                                            self.image_size)

    def layer_methods(self):
        return [m for m in self.methods if m in LAYER_METHODS]

    def selected(self, model, granularity):
        from tfprune.pruning import core  # TensorFlow: only when a job runs

        return core.select_layers(model, granularity, self.layers, self.prune_classifier,
                                  self.prune_first_conv)[0]
