# Two commands on a fresh machine:  `make run` (chat UI on the bundled corpus)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: run setup index test eval bench clean

run: index
	$(BIN)/leftqa serve --host $(HOST) --port $(PORT)

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Builds index/ only when it is missing or stale (corpus, model, chunking or format changed).
index: setup
	$(BIN)/leftqa index --if-stale

test: setup
	$(BIN)/python -m pytest -q

eval: index
	$(BIN)/leftqa eval --mode all

bench: index
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) index .pytest_cache
