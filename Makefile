# Two commands on a fresh machine with python3 and make: `make demo` and `make test`.
# Each creates .venv and installs the pinned dependencies (requirements.lock) when missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= saved_models/demo

.PHONY: demo test test-fast venv clean-venv data bazel bazel-test build-files

$(STAMP): setup.cfg pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

# The main job: the default sweep on digits + cnn (23 variants: the dense baseline; weight and unit
# pruning under constant and polynomial schedules at sparsities 0.5, 0.75, 0.9, 0.95; the dynamic,
# adaptive (each choosing its sparsity) and incremental (one per sparsity) pruners), each converted
# to four quantizations; prints where report.md is.
demo: $(STAMP)
	$(BIN)/tfprune sweep --dataset=digits --model=cnn --output_dir=$(DEMO_DIR)

# Real data: Debian's dataset-fashion-mnist puts the original Fashion-MNIST IDX files in
# /usr/share/datasets/fashion-mnist/, and fortunes its quotations (the text data set `fortunes`)
# in /usr/share/games/fortunes/, where tfprune looks for them (docs/data.md).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
data:
	@if [ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] && [ -f /usr/share/games/fortunes/people ]; then \
		echo "Fashion-MNIST: /usr/share/datasets/fashion-mnist/, fortunes: /usr/share/games/fortunes/ (installed)"; \
	elif command -v apt-get >/dev/null 2>&1; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist fortunes; \
	else \
		echo "no apt-get here: put the four Fashion-MNIST IDX .gz files in ~/.keras/datasets/fashion-mnist/ or pass --data_dir=DIR, and fortune files in DIR/fortunes/ (docs/data.md)"; \
		exit 1; \
	fi

# Tests run in one process per core (pytest-xdist); a module's tests stay in one process, so its
# module-scoped fixtures (trained models) are made once. Two tiers (tests/tiers.py): unit tests
# train nothing and start no process; integration tests do. `test` runs both, `test-fast` the
# unit tier and the integration tests marked smoke.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadscope --durations=10

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadscope -m "not integration or smoke"

# Bazel: Debian's bazel-bootstrap (4.2), offline. WORKSPACE takes the third-party packages from
# .venv (bazel/venv.bzl) and Bazel's own downloads from bazel/offline/. `bazel-test` checks that
# the BUILD graph builds and runs: every target's unit and smoke tests, the tiers of test-fast
# (tests/BUILD: <module>; <module>_integration, tagged integration, is left out).
bazel:
	@if command -v bazel >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bazel-bootstrap; \
	else \
		echo "no bazel and no apt-get here: install Bazel 4.2 (Debian/Ubuntu: bazel-bootstrap)"; exit 1; \
	fi

bazel-test: $(STAMP) bazel
	bazel test --test_tag_filters=-integration //...

# The BUILD files, from the imports (tests/test_build.py fails when they are out of date).
build-files: $(STAMP)
	$(BIN)/python bazel/build_files.py

clean-venv:
	rm -rf $(VENV)
