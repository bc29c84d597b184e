"""The command line: ``tfprune <command> [--flags]`` and the scripts in experiments/, which run
the same modules (``python -m experiments.prune`` is ``tfprune prune``). This is the one layer
that reads absl FLAGS: each command module declares its flags from the job configs, builds its
config, and hands it to its job in tfprune/jobs/.

``COMMANDS``: command name -> its module's ``run`` (lazy: a command's module is imported only
when it runs; each defines its own flags, and several share names such as --dataset).
"""

from tfprune.registry import Registry

COMMANDS = Registry("command")
for _name in ("train", "prune", "sweep", "export", "tune", "sensitivity", "visualize"):
    COMMANDS.register_lazy(_name, f"tfprune.cli.{_name}:run")


def module_of(command):
    """The module that implements ``command`` (a registered name)."""
    return f"tfprune.cli.{COMMANDS.validate(command)}"
