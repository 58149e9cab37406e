# Two commands do all set-up: `make demo` and `make test` each create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test export clean-nbs lab

$(STAMP): setup.py settings.ini pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/piflow-ref toy --out outputs/toy

test: $(STAMP)
	$(BIN)/python -m pytest

# Developer helpers (not needed by users): regenerate the library, strip notebook metadata, open JupyterLab.
export: $(STAMP)
	$(BIN)/nbdev_export
clean-nbs: $(STAMP)
	$(BIN)/nbdev_clean
lab: $(STAMP)
	$(BIN)/jupyter lab nbs
