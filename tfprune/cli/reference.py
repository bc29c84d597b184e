"""The options reference, docs/options.md, generated from the declarations: for every command
of ``COMMANDS``, its flags made in a FlagValues of their own exactly as the command makes them
(common.define_command_flags), with their defaults, allowed values, help, and the dataclass
that declares each. tests/test_docs.py fails when the file is stale.

    python -m tfprune.cli.reference           # rewrite docs/options.md
    python -m tfprune.cli.reference --check   # exit 1 when docs/options.md is stale
"""

import os
import sys

from absl import flags

from tfprune import declare
from tfprune.cli import COMMANDS, common
from tfprune.cli.main import summary

PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), "docs", "options.md")

HEADER = """# Options reference

Every flag of every `tfprune` command (and of `python -m experiments.<script>`, which takes the
same flags), generated from the declarations by `python -m tfprune.cli.reference`; do not edit
by hand (a test fails when this file is stale). Each option is declared once, as a field of the
dataclass named in its row: its default, help and allowed values. A flag left unset takes the
default shown; "-" means none (the job chooses, as the help says). A list flag takes
comma-separated values.
"""


def _declarers(command):
    """{flag name: "module.Class"} of the dataclasses a command's flags come from."""
    found = {}
    for source, _ in COMMANDS.get(command).sources() + [(common.RunFields, False)]:
        for field, declaration in declare.declared(source):
            name = declare.flag_name(field, declaration)
            if declaration.flag is not False and name not in found:
                owner = next(c for c in source.__mro__ if field.name in
                             getattr(c, "__annotations__", {}))
                owner = owner.__dict__.get("declared_in", owner)  # a part made of library options
                found[name] = f"{owner.__module__}.{owner.__name__}"
    return found


def _cell(text):
    """One table cell: one line, with | < > escaped (a <placeholder> is no HTML tag)."""
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;").replace(
        ">", "&gt;")


def _default(flag):
    if flag.default is None or flag.default == []:
        return "-"
    if isinstance(flag.default, bool):
        return "true" if flag.default else "false"
    if isinstance(flag.default, list):
        return ",".join(map(str, flag.default))
    return str(flag.default)


def section(command):
    """The markdown section of one command."""
    flag_values = flags.FlagValues()
    names = common.define_command_flags(command, flag_values)
    owners = _declarers(command)
    spec = COMMANDS.get(command)
    lines = [f"## `tfprune {command}`", "", summary(command), ""]
    if spec.required:
        lines += ["Required: " + ", ".join(f"`--{n}`" for n in spec.required) + ".", ""]
    lines += ["| flag | default | help | declared in |", "| --- | --- | --- | --- |"]
    for name in names:
        flag = flag_values[name]
        shown = f"`--{name}`" if flag.flag_type() != "bool" else f"`--[no]{name}`"
        lines.append(f"| {shown} | `{_cell(_default(flag))}` | {_cell(flag.help)} | "
                     f"`{owners.get(name, '')}` |")
    return "\n".join(lines) + "\n"


def generate():
    contents = [f"- [`tfprune {name}`](#tfprune-{name})" for name in COMMANDS.names()]
    return HEADER + "\n" + "\n".join(contents) + "\n\n" + "\n".join(
        section(name) for name in COMMANDS.names())


def main(argv):
    text = generate()
    if "--check" in argv:
        with open(PATH, encoding="utf-8") as f:
            stale = f.read() != text
        if stale:
            print(f"{PATH} is stale: run python -m tfprune.cli.reference", file=sys.stderr)
        return int(stale)
    with open(PATH, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
