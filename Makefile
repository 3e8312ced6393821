# Two commands on a fresh machine:  `make run` (chat UI on the bundled corpus)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: run setup index test eval bench scorer clean

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

# Retrains the shipped answer scorer from SQuAD 2.0 (../shared/data/squad2) with the commands of its model card
# (src/leftqa/qa/scorer_model/MODEL_CARD.md; a test keeps the two the same). Hours on a 2-core CPU.
scorer: setup
	$(BIN)/leftqa train-scorer --squad ../shared/data/squad2 --pairs 99998 --layers 6 --freeze-embeddings --loss listwise --combiner-missing 1250

clean:
	rm -rf $(VENV) index .pytest_cache
