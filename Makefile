# Two commands on a fresh machine with python3 and make: `make demo` and `make test`.
# Each creates .venv and installs the pinned dependencies (requirements.lock) when missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= saved_models/demo

.PHONY: demo test test-fast venv clean-venv

$(STAMP): setup.cfg pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

# The main job: the default sweep (weight and unit pruning, constant and polynomial schedules,
# sparsities 0.5-0.95, four quantizations) on digits + cnn; prints where report.md is.
demo: $(STAMP)
	$(BIN)/python -m experiments.sweep --dataset=digits --model=cnn --output_dir=$(DEMO_DIR)

test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=10

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

clean-venv:
	rm -rf $(VENV)
