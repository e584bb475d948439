# The two commands of the README: `make demo` and `make test`. Both build .venv when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.robustinv-installed
# Optional extras to install besides the package; .ci/run adds ray and docs (EXTRAS=test,ray,docs).
EXTRAS ?= test

.PHONY: venv demo test test-fast docs clean

venv: $(STAMP)

# Re-installs only when pyproject.toml changes; the package is installed editable.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	touch $@

demo: venv
	$(BIN)/robustinv run

# Over every core (pytest-xdist); a worker that runs out of tests takes some of another's (worksteal).
PYTEST := $(BIN)/python -m pytest -n auto --dist worksteal

test: venv
	$(PYTEST)

# The inner loop: everything but the tests marked slow (real data, Ray, worker processes, subprocesses, training).
test-fast: venv
	$(PYTEST) -m "not slow"

# The documentation site (docs/, mkdocs.yml) into build/site; --strict: any warning fails the build.
docs: venv
	test -x $(BIN)/mkdocs || $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[docs]'
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
