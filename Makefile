# The two commands of the README: `make demo` and `make test`. Both build .venv when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.robustinv-installed
# Optional extras to install besides the package; .ci/run adds ray (EXTRAS=test,ray).
EXTRAS ?= test

.PHONY: venv demo test clean

venv: $(STAMP)

# Re-installs only when pyproject.toml changes; the package is installed editable.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	touch $@

demo: venv
	$(BIN)/robustinv run

test: venv
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
