# Two commands do all set-up: `make demo` and `make test` each create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test exercises site export clean-nbs lab

$(STAMP): setup.py settings.ini pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/piflow-ref toy --out outputs/toy

# pytest-xdist: TEST_JOBS test processes side by side (each test runs one torch thread); TEST_JOBS=0 runs them in this process.
TEST_JOBS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist worksteal

# The course (chapter `course`): student notebooks without solutions in exercises/, the executed chapters as HTML in _site/.
exercises: $(STAMP)
	$(BIN)/python -c "from piflow_ref.course import write_exercises; print(*write_exercises('nbs', 'exercises'), sep='\n')"
site: $(STAMP)
	$(BIN)/python -c "from piflow_ref.course import build_site, check_site; build_site('nbs', '_site'); print('_site/index.html', check_site('_site'))"

# Developer helpers (not needed by users): regenerate the library, strip notebook metadata, open JupyterLab.
export: $(STAMP)
	$(BIN)/nbdev_export
clean-nbs: $(STAMP)
	$(BIN)/nbdev_clean
lab: $(STAMP)
	$(BIN)/jupyter lab nbs
