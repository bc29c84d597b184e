"""The package as a user installs it: `pip install <checkout>` into a new virtual environment
outside the checkout gives a working `tfprune` command and no top-level `experiments`.

The new environment takes the pinned dependencies from the environment running the tests (a
.pth line naming its site-packages: no download, no second TensorFlow install), and pip
installs only tfprune itself, from a copy of the files a source distribution holds."""

import os
import shutil
import subprocess
import sysconfig
import venv

import pytest

from conftest import ROOT

pytestmark = pytest.mark.integration


def _environment(tmp_path):
    """(python, tfprune command) of a new venv holding an installed copy of the package."""
    source = tmp_path / "source"
    shutil.copytree(os.path.join(ROOT, "tfprune"), source / "tfprune",
                    ignore=shutil.ignore_patterns("__pycache__", "BUILD"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source / name)
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False)
    python = str(env_dir / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True)
    with open(os.path.join(site.stdout.strip(), "dependencies.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", str(source)], capture_output=True, text=True, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return python, str(env_dir / "bin" / "tfprune")


def test_installed_command_runs_a_sweep_outside_the_checkout(tmp_path):
    python, command = _environment(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    work = tmp_path / "elsewhere"
    work.mkdir()
    listed = subprocess.run([command, "--help"], capture_output=True, text=True, cwd=work,
                            env=env)
    assert listed.returncode == 0, listed.stderr
    for name in ("train", "prune", "sweep", "export", "tune", "sensitivity", "visualize"):
        assert f"\n  {name} " in listed.stdout, listed.stdout
    where = subprocess.run([python, "-c", "import tfprune; print(tfprune.__file__)"],
                           capture_output=True, text=True, cwd=work, env=env)
    assert where.stdout.startswith(str(tmp_path / "env")), where.stdout + where.stderr
    generic = subprocess.run([python, "-c", "import experiments"], capture_output=True,
                             text=True, cwd=work, env=env)
    assert generic.returncode != 0 and "No module named 'experiments'" in generic.stderr
    out = tmp_path / "sweep"
    swept = subprocess.run(
        [command, "sweep", "--dataset=digits", "--model=mlp", "--methods=weight",
         "--sparsities=0.5", "--quantizations=float32", "--schedules=constant",
         f"--output_dir={out}"], capture_output=True, text=True, cwd=work, env=env, timeout=600)
    assert swept.returncode == 0, swept.stderr[-3000:]
    assert (out / "report.md").is_file() and "report:" in swept.stdout
    bad = subprocess.run([command, "sweep", "--sparsities=abc"], capture_output=True,
                         text=True, cwd=work, env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("error:"), bad.stderr
    unknown = subprocess.run([command, "prunee"], capture_output=True, text=True, cwd=work,
                             env=env)
    assert unknown.returncode == 2 and "unknown command 'prunee'" in unknown.stderr
