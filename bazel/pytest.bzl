"""`pytest_test`: one test module as Bazel test targets (tests/BUILD)."""

def pytest_test(name, deps, integration = False, data = []):
    """`name` runs tests/`name`.py's unit and smoke tests through pytest (bazel_pytest.py), the
    tiers of `make test-fast` (tests/tiers.py); with `integration`, `name`_integration (tagged
    integration, which `make bazel-test` leaves out) runs its other integration tests."""
    variants = [(name, "not integration or smoke", "large", [])]
    if integration:
        variants.append((name + "_integration", "integration and not smoke", "enormous",
                         ["integration"]))
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
