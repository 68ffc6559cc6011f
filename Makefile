# msfreq: every target sets itself up on a fresh machine (creates .venv, installs what it needs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
BENCH_STAMP := $(VENV)/.bench-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
TORCH_STAMP := $(VENV)/.torch-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# The CPU build of torch (about 200 MB, not the 2.5 GB CUDA one): from a local wheel store
# where there is one, else from PyTorch's CPU index.
TORCH_CPU ?= torch==2.13.0+cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
DEMO_OUT := demo_output

.PHONY: demo test test-torch quick lint bench samples clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,plot]'
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,plot,bench,dask]'
	-$(BIN)/python -m pip install --quiet essentia || echo "essentia does not install here; the benchmark skips it"
	touch $@

## demo: encode the shipped samples, inspect one, decode them all, report the quality
demo: $(STAMP)
	rm -rf $(DEMO_OUT)
	$(BIN)/msfreq encode sample_audio/ -o $(DEMO_OUT)/encoded
	$(BIN)/msfreq inspect $(DEMO_OUT)/encoded/gliding_raga.wav.h5 --plot $(DEMO_OUT)/gliding_raga.png
	$(BIN)/msfreq inspect $(DEMO_OUT)/encoded
	$(BIN)/msfreq decode $(DEMO_OUT)/encoded/ -o $(DEMO_OUT)/decoded
	$(BIN)/python examples/roundtrip_quality.py sample_audio $(DEMO_OUT)/decoded

## test: lint and the whole test suite
test: $(STAMP)
	$(BIN)/ruff check msfreq tests benchmarks examples
	$(BIN)/python -m pytest -q

## test-torch: msfreq.torch's tests, example and README snippet on the CPU (installs torch's CPU build once)
test-torch: $(TORCH_STAMP)
	$(BIN)/python -m pytest -q tests/test_torch.py tests/test_docs.py msfreq/torch.py

$(TORCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet '$(TORCH_CPU)' 2>/dev/null \
	  || $(BIN)/python -m pip install --quiet --extra-index-url $(TORCH_INDEX) 'torch>=2.1'
	$(BIN)/python -m pip install --quiet -e '.[torch]'
	touch $@

## quick: lint and the tests not marked slow
quick: $(STAMP)
	$(BIN)/ruff check msfreq tests benchmarks examples
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check msfreq tests benchmarks examples

## bench: storage (benchmarks/STORAGE.md), --memory (benchmarks/MEMORY.md), then msfreq against
## librosa (and Essentia when it installs): benchmarks/RESULTS.md
bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/storage.py
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/cluster.py
	$(BIN)/python benchmarks/phase.py
	$(BIN)/python benchmarks/run.py

samples: $(STAMP)
	$(BIN)/python examples/make_samples.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache
