# Front door: `make demo`, `make test`, `make bench`. Bootstraps .venv from the package registries.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: test demo demo-protocol bench vectors fuzz clean

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

# Longer fuzz runs (the suite runs a short one): FUZZ_SECONDS per target, docs/security.md
FUZZ_SECONDS ?= 60
FUZZ_API_EXAMPLES ?= 300
FUZZ_API_SECONDS ?= 300
fuzz: $(STAMP)
	$(BIN)/python -m fuzz --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)
	$(BIN)/python -m fuzz.api --examples $(FUZZ_API_EXAMPLES) --max-time $(FUZZ_API_SECONDS)

vectors: $(STAMP)
	$(BIN)/python -m lockproto.vectors tests/vectors
	$(BIN)/python tests/test_fw_vectors.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info fuzz-artifacts
