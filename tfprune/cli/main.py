"""``tfprune``, the command installed with the package: ``tfprune <command> [--flags]`` runs one
of ``COMMANDS`` with the flags, messages and exit codes of its script in experiments/;
``tfprune --help`` lists the commands, ``tfprune <command> --help`` (or ``--helpfull``) its
flags. No TensorFlow is imported before a command has parsed its flags."""

import ast
import importlib
import importlib.util
import sys

from tfprune.cli import COMMANDS, module_of

EXIT_BAD_INPUT = 2  # as common.EXIT_BAD_INPUT; common is not imported for --help


def summary(command):
    """The first line of the command module's docstring, read without importing it."""
    spec = importlib.util.find_spec(module_of(command))
    with open(spec.origin, encoding="utf-8") as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ""
    return doc.splitlines()[0] if doc else ""


def usage():
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: tfprune <command> [--flags]   (tfprune <command> --help: its flags)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {summary(name)}" for name in COMMANDS.names()]
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help", "--helpfull"):
        print(usage())
        return 0
    command = argv[1]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; choose from {', '.join(COMMANDS.names())} "
              "(tfprune --help)", file=sys.stderr)
        return EXIT_BAD_INPUT
    importlib.import_module(module_of(command)).run([f"tfprune {command}"] + argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
