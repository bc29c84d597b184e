"""The BUILD file stays true to the files it names."""

import glob
import os
import re

from conftest import ROOT


def build_text():
    with open(os.path.join(ROOT, "BUILD")) as f:
        return f.read()


def test_every_named_source_exists():
    for path in re.findall(r'"((?:tfprune|experiments|tests)/[\w/]+\.py)"', build_text()):
        assert os.path.exists(os.path.join(ROOT, path)), path


def test_every_experiment_script_has_a_binary():
    text = build_text()
    for path in glob.glob(os.path.join(ROOT, "experiments", "*.py")):
        name = os.path.basename(path)
        if name in ("__init__.py", "common.py"):
            continue
        assert f'srcs = ["experiments/{name}"]' in text, f"no py_binary for experiments/{name}"
