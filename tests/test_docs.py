"""The docs hold: the README is a page, every link in README and docs/ resolves, every command
in their code blocks uses only flags its command defines, and docs/options.md is what the
declarations generate. Read from the files, no process started."""

import glob
import os
import re
import shlex

import pytest
from absl import flags

from conftest import ROOT
from tfprune.cli import COMMANDS, common, reference

DOCS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
SCRIPTS = {"export_tflite": "export"}  # python -m experiments.<script> -> its command
ABSL = {"help", "helpfull", "helpshort", "helpxml", "verbosity", "v", "logtostderr",
        "alsologtostderr", "flagfile", "undefok", "only_check_args", "pdb", "verbose"}


def _text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _anchor(heading):
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path):
    return {_anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", _text(path), re.M)}


def test_readme_fits_on_a_page():
    assert len(_text(DOCS[0]).splitlines()) <= 250


def test_options_reference_is_generated_from_the_declarations():
    assert _text(reference.PATH) == reference.generate(), \
        "docs/options.md is stale: run python -m tfprune.cli.reference"


@pytest.mark.parametrize("path", DOCS, ids=os.path.basename)
def test_every_relative_link_resolves(path):
    for target in re.findall(r"\]\(([^)\s]+)\)", _text(path)):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
        assert os.path.exists(resolved), f"{os.path.basename(path)}: {target}"
        if anchor and resolved.endswith(".md"):
            assert anchor in _anchors(resolved), f"{os.path.basename(path)}: {target}"


def _commands(path):
    """(command, flags) of each tfprune / python -m experiments command in the code blocks."""
    text = _text(path)
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    blocks += [m.group(0) for m in re.finditer(r"(?:^(?: {4}|\t).*\n?)+", text, re.M)]
    found = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].strip()
            match = re.search(r"(?:^|\s|/)(?:tfprune\s+(\w+)|python\s+-m\s+(?:experiments|"
                              r"tfprune\.cli)\.(\w+))(\s.*)?$", line)
            if not match or line.startswith(("from ", "import ", ">>>")):
                continue
            command = match.group(1) or SCRIPTS.get(match.group(2), match.group(2))
            try:
                words = shlex.split(match.group(3) or "")
            except ValueError:
                words = (match.group(3) or "").split()
            names = [w[2:].split("=")[0] for w in words if w.startswith("--")]
            found.append((command, names, line))
    return found


def _flags(command):
    flag_values = flags.FlagValues()
    common.define_command_flags(command, flag_values)
    return flag_values


@pytest.mark.parametrize("path", DOCS, ids=os.path.basename)
def test_every_documented_command_uses_flags_it_has(path):
    known = {}
    for command, names, line in _commands(path):
        assert command in COMMANDS, f"{os.path.basename(path)}: unknown command in {line!r}"
        if command not in known:
            known[command] = _flags(command)
        for name in names:
            plain = name[2:] if name.startswith("no") and name[2:] in known[command] else name
            assert plain in known[command] or plain in ABSL, \
                f"{os.path.basename(path)}: `tfprune {command}` has no --{name} ({line!r})"


def test_the_docs_hold_commands_to_check():
    """The extraction above finds the commands (a broken pattern would pass everything)."""
    found = [c for path in DOCS for c in _commands(path)]
    assert len(found) >= 30 and {c for c, _, _ in found} >= {"sweep", "prune", "export"}


@pytest.mark.parametrize("command", COMMANDS.names())
def test_every_declared_option_has_its_flag_and_its_reference_row(command):
    """An option declared in a command's config (or a part of it) is a flag of the command and
    a row of its section in docs/options.md, with nothing else to write."""
    from tfprune import declare

    flag_values = _flags(command)
    section = reference.section(command)
    for source, _ in COMMANDS.get(command).sources():
        for field, declaration in declare.declared(source):
            if declaration.flag is False:
                continue
            name = declare.flag_name(field, declaration)
            assert name in flag_values, (command, name)
            assert declaration.text() in flag_values[name].help, (command, name)
            assert f"`--{name}`" in section or f"`--[no]{name}`" in section, (command, name)
