"""The sensitivity job's config: ``SensitivityConfig``, validated on construction."""

import dataclasses

from tfprune import checks
from tfprune.data import apply_dataset_defaults, check_dataset
from tfprune.jobs.configs.train import BaselineFields, resolve_augmentation
from tfprune.models import MODELS
from tfprune.pruning import allocation
from tfprune.pruning.methods import ONE_SHOT, check_one_shot


LAYER_METHODS = ("weight", "unit")  # per-layer curves and targets; channel: per group


@dataclasses.dataclass
class SensitivityConfig(BaselineFields):
    dataset: str = "digits"
    model: str = "cnn"
    baseline: str = "train"       # "train" or the path of a saved Keras model
    baseline_epochs: int = None   # None: the data set's default
    batch_size: int = None
    seed: int = 0
    split_seed: int = 0
    augment: str = "auto"
    data_dir: str = None
    image_size: tuple = None
    methods: tuple = ("weight", "unit")
    sparsities: tuple = allocation.GRID
    samples: int = 2000           # validation images for the per-layer curves and int4 costs
    targets: tuple = (0.8, 0.9)   # global sparsities to derive layer-wise targets for
    channel_groups: bool = False  # also each channel group alone
    quantization: bool = True     # each layer alone at int4 weights
    layers: tuple = None
    prune_classifier: bool = False
    prune_first_conv: bool = False
    deterministic: bool = True

    def __post_init__(self):
        self.image_size = check_dataset(self.dataset, self.image_size)
        apply_dataset_defaults(self, baseline_epochs=("epochs", 60),
                               batch_size=("batch_size", 32))
        MODELS.validate(self.model)
        self.methods = tuple(dict.fromkeys(self.methods))
        checks.check_not_empty("methods", self.methods, f"give some of "
                               f"{', '.join(ONE_SHOT)}")
        for method in self.methods:
            check_one_shot(method)
        self.sparsities = allocation.check_grid(self.sparsities)
        self.targets = tuple(sorted({checks.check_sparsity("targets", t) for t in self.targets}))
        for name, minimum in (("baseline_epochs", 1), ("batch_size", 1), ("samples", 1),
                              ("seed", 0), ("split_seed", 0)):
            checks.check_int(name, getattr(self, name), minimum)
        if self.baseline != "train":
            checks.check_file("baseline", self.baseline,
                              "'train' or the path of a saved Keras model (.keras or .h5)")
        if isinstance(self.layers, str):
            self.layers = [n.strip() for n in self.layers.split(",") if n.strip()]
        self.layers = tuple(self.layers) if self.layers else None
        self.augment = resolve_augmentation(self.augment, self.dataset, self.model,
                                            self.image_size)

    def to_dict(self):
        return dataclasses.asdict(self)

    def layer_methods(self):
        return [m for m in self.methods if m in LAYER_METHODS]

    def selected(self, model, granularity):
        from tfprune.pruning import core  # TensorFlow: only when a job runs

        return core.select_layers(model, granularity, self.layers, self.prune_classifier,
                                  self.prune_first_conv)[0]
