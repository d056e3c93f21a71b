# Two commands matter: `make demo` and `make test`. Everything else is a step they share.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# llama.cpp compiles once (about 10 min on 2 cores); pip caches the wheel afterwards.
export CMAKE_BUILD_PARALLEL_LEVEL := 2
# Built for this CPU, but without AMX: a machine whose CPU reports AMX while its kernel does not grant it kills the
# model with SIGILL on the first long prompt (tilezero in ggml_backend_amx_mul_mat, seen 2026-11-29). GCC keeps an
# explicit -mno-* over -march=native whatever their order.
AMX_OFF := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
export CMAKE_ARGS := -DCMAKE_C_FLAGS="$(AMX_OFF)" -DCMAKE_CXX_FLAGS="$(AMX_OFF)"

.PHONY: install demo test test-fast browser bench eval clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip wheel
	# torch first, pinned: anything else would pull several GB of CUDA wheels.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium and ChromeDriver for the web page test (never a browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

demo: install
	$(BIN)/rag ingest seeds
	$(BIN)/rag ask "Who has led ISIS-K since 2020?"

test: install browser
	$(BIN)/python -m pytest -q

# The lane to run while working (under 2 minutes): in-process tests with the fake generator; no model, no server,
# no slow end-to-end CLI runs. `make test` runs everything.
test-fast: install
	$(BIN)/python -m pytest -q -m "not llm and not server and not slow"

eval: install
	$(BIN)/rag eval

bench: install
	$(BIN)/rag bench

# Drops the index (Chroma, BM25), the assembled model and caches. Never .rag/uploads/: it holds the only copy of
# files uploaded through the API; `rag ingest .rag/uploads` indexes them again (same ids).
clean:
	@if [ -d .rag ]; then find .rag -mindepth 1 -maxdepth 1 ! -name uploads -exec rm -rf {} +; fi
	rm -rf .pytest_cache
	@if [ -d .rag/uploads ]; then echo "kept .rag/uploads/ (uploaded originals); re-index them with: rag ingest .rag/uploads"; fi
