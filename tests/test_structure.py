"""The structure holds: no import circles, data flows downward (jobs over the library), run
directories and flags stay where they belong. Read from the source, not from running it."""

import ast
import os

from conftest import ROOT

PACKAGE = os.path.join(ROOT, "tfprune")


def _modules():
    """{module name: path} of every module of the tfprune package."""
    found = {}
    for directory, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path):
    """Every tfprune module imported anywhere in the file (function-level imports included)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                targets.add(full if full in MODULES else node.module)
    return {t for t in targets if t.split(".")[0] == "tfprune"}


GRAPH = {module: _imports(path) - {module} for module, path in MODULES.items()}


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return result


def test_the_graph_is_read():
    assert GRAPH["tfprune.jobs.sweep"] >= {"tfprune.jobs.prune", "tfprune.results.rows"}
    assert "tfprune.pruning.masks" in GRAPH["tfprune.pruning.dynamic"]


def test_no_import_circles():
    # Package __init__ files re-export their modules; a module importing its own package's
    # __init__ would close a circle, so they stay in the graph.
    assert _cycles(GRAPH) == []


def test_the_detector_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_library_never_imports_jobs():
    for module, targets in GRAPH.items():
        if module.startswith(("tfprune.pruning", "tfprune.tflite", "tfprune.results")) or \
                module.count(".") == 1 and module != "tfprune.jobs":
            assert not {t for t in targets if t.startswith("tfprune.jobs")}, module


def test_pruning_needs_no_data_training_or_results():
    for module, targets in GRAPH.items():
        if module.startswith("tfprune.pruning"):
            bad = {t for t in targets if t.startswith(("tfprune.data", "tfprune.training",
                                                       "tfprune.results", "tfprune.tflite"))}
            assert not bad, (module, bad)


def test_run_directories_and_flags_stay_in_their_layers():
    """Flags only in the command layer (tfprune.cli); run directories only in the jobs."""
    for module, path in MODULES.items():
        text = open(path, encoding="utf-8").read()
        if module.startswith("tfprune.cli"):
            continue
        assert "FLAGS" not in text and "absl" not in text, f"{module} reads flags"
        if not module.startswith("tfprune.jobs"):
            for name in ("config.json", "metrics.json", "variant.json", "prepare_run_dir"):
                assert name not in text, f"{module} knows about run directory file {name}"


def test_one_home_for_the_row_schema():
    """Column lists are derived from results/rows.py, never restated: no other module holds a
    list or tuple literal naming three or more result columns, except the declared schemas of
    other tables (module-level ``*_COLUMNS``: layers.csv, comparison.csv, trials.csv)."""
    from tfprune.results.rows import COLUMNS

    columns = set(COLUMNS) - {"seed", "method", "schedule", "quantization", "target_sparsity"}
    for module, path in MODULES.items():
        if module == "tfprune.results.rows":
            continue
        tree = ast.parse(open(path, encoding="utf-8").read())
        other_tables = {id(node.value) for node in tree.body if isinstance(node, ast.Assign)
                        and any(getattr(t, "id", "").endswith("COLUMNS") for t in node.targets)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and id(node) not in other_tables:
                named = {e.value for e in node.elts if isinstance(e, ast.Constant)} & columns
                assert len(named) < 3, (module, node.lineno, sorted(named))
