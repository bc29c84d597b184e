"""`pytest_test`: one test module as Bazel test targets (tests/BUILD)."""

def pytest_test(name, deps, slow = False, data = []):
    """`name` runs tests/`name`.py's tests but the slow ones through pytest (bazel_pytest.py);
    with `slow`, `name`_slow (tagged slow, `make bazel-test` leaves it out) runs those."""
    variants = [(name, "not slow", "large", [])]
    if slow:
        variants.append((name + "_slow", "slow", "enormous", ["slow"]))
    for target, marks, size, tags in variants:
        native.py_test(
            name = target,
            size = size,
            srcs = [name + ".py", "bazel_pytest.py"],
            main = "bazel_pytest.py",
            python_version = "PY3",
            args = ["$(location %s.py)" % name, "-m", "'%s'" % marks],
            data = ["//:setup.cfg"] + data,
            tags = tags,
            deps = deps,
        )
