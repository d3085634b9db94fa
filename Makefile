# Two commands from a fresh clone:
#   make demo   set up .venv, train a sparse LSTM language model on PTB, export it
#   make test   set up .venv with the test extras, run the test suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# The data folder: $KERAS_SPARSE_RNN_DATA if set, else ../shared/data if present;
# else the loaders use the Keras cache and download (sha256-checked).
DATA ?= $(or $(KERAS_SPARSE_RNN_DATA),$(wildcard $(abspath ../shared/data)))
export KERAS_SPARSE_RNN_DATA := $(DATA)

.PHONY: demo test install install-test bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: setup.py constraints.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: setup.py constraints.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -c constraints.txt -e ".[test,baselines,bench]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(PY) examples/ptb_language_model.py --size small --sparsity 0.67 \
		--distribution erdos_renyi --method set --epochs 3 --steps-per-epoch 500 \
		--verbose 1 --out-dir runs/demo

test: install-test
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
