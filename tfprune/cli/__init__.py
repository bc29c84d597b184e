"""The command line: ``tfprune <command> [--flags]`` and the scripts in experiments/, which run
the same modules (``python -m experiments.prune`` is ``tfprune prune``). This is the one layer
that reads absl FLAGS: each command module makes its flags from the declarations its entry in
``COMMANDS`` names (tfprune.declare: a field's default, help and allowed values, declared once
in its job config), builds the config from them, and hands it to its job in tfprune/jobs/.

``COMMANDS``: command name -> ``Command``, what its flags are made from. A command's module
(tfprune/cli/<name>.py) is imported only when it runs: each defines its own flags, and several
share names such as --dataset. docs/options.md is generated from the same entries
(tfprune/cli/reference.py).
"""

import dataclasses
import importlib

from tfprune.registry import Registry


@dataclasses.dataclass(frozen=True)
class Command:
    """``declarations``: "module:Class" of the dataclasses whose declared fields are its flags,
    in order (a name two of them declare is made once, from the first); ``unset``: those whose
    flags default to unset (the config's default then applies; the deciding methods' options);
    ``output_dir``: where it writes without --output_dir; ``required``: flags it needs."""

    name: str
    declarations: tuple
    output_dir: str
    unset: tuple = ()
    required: tuple = ()

    def sources(self):
        """[(dataclass, unset)] of the declarations, imported (no TensorFlow)."""
        found = []
        for reference in self.declarations:
            module, _, attribute = reference.partition(":")
            found.append((getattr(importlib.import_module(module), attribute),
                          reference in self.unset))
        return found

    @property
    def module(self):
        return f"tfprune.cli.{self.name}"


DYNAMIC = "tfprune.pruning.options:DynamicConfig"
COMMANDS = Registry("command")
for _command in (
        Command("train", ("tfprune.jobs.configs.train:TrainConfig",),
                "saved_models/train/<dataset>-<model>-seed<seed>"),
        Command("prune", ("tfprune.jobs.configs.prune:PruneConfig", DYNAMIC),
                "saved_models/prune/<dataset>-<model>-<method>-<schedule>-<sparsity>-seed<seed>",
                unset=(DYNAMIC,)),
        Command("sweep", ("tfprune.jobs.configs.sweep:SweepConfig",
                          "tfprune.jobs.configs.sweep:SweepRunFields", DYNAMIC),
                "saved_models/sweep/<dataset>-<model>", unset=(DYNAMIC,)),
        Command("export", ("tfprune.jobs.configs.export:ExportConfig",),
                "<model directory>/tflite", required=("model_path",)),
        Command("tune", ("tfprune.jobs.configs.tune:TuneConfig",),
                "saved_models/tune/<dataset>-<model>", required=("baseline",)),
        Command("sensitivity", ("tfprune.jobs.configs.sensitivity:SensitivityConfig",),
                "saved_models/sensitivity/<dataset>-<model>-seed<seed>"),
        Command("visualize", ("tfprune.jobs.configs.visualize:VisualizeConfig",),
                "<run_dir>/visualize, or saved_models/visualize/<dataset>")):
    COMMANDS.register(_command.name, _command)


def module_of(command):
    """The module that implements ``command`` (a registered name)."""
    return COMMANDS.get(command).module
