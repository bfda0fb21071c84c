# Two commands on a fresh machine: `make demo` and `make test`. Both install what is missing
# (Debian packages, a local .venv with the package) and are fast on a second run.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp-install
PYTEST_ARGS ?=

.PHONY: setup demo test test-all clean

setup: $(STAMP)

$(VENV)/.stamp-system: scripts/install_system_deps.sh
	bash scripts/install_system_deps.sh
	@mkdir -p $(VENV) && touch $@

$(STAMP): setup.py $(VENV)/.stamp-system
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

demo: setup
	$(BIN)/mixq demo

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Everything, the slow end-to-end tests included.
test-all: setup
	$(BIN)/python -m pytest -q --runslow $(PYTEST_ARGS)

clean:
	rm -rf build .build .pytest_cache
