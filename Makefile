# Front door: `make demo`, `make test`, `make bench`. Bootstraps .venv from the package registries.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: test demo demo-protocol bench vectors clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python demo/district_demo.py $(DEMO_ARGS)

demo-protocol: $(STAMP)
	$(BIN)/python demo/protocol_demo.py

bench: $(STAMP)
	$(BIN)/python bench/run.py

vectors: $(STAMP)
	$(BIN)/python -m lockproto.vectors tests/vectors
	$(BIN)/python tests/test_fw_vectors.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
