# biokin_nb: `make notebooks` runs the notebook sequence, `make test` runs the tests.
# Both set everything up first (Debian packages when root, a venv, the Jupyter kernel).
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEB_PACKAGES := libegl1 libgl1-mesa-dri chromium
export ANNY_CACHE_DIR ?= $(CURDIR)/.cache/anny
export VTK_DEFAULT_OPENGL_WINDOW ?= vtkEGLRenderWindow

.PHONY: setup debs test lint notebooks reports bench checkpoint clean

setup: $(STAMP)

debs:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages (run as root or install them): $$missing"; fi; \
	fi

$(STAMP): pyproject.toml | debs
	@command -v $(PY) >/dev/null || { echo "needs $(PY) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name biokin --display-name "biokin (venv)" >/dev/null
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check biokin_nb tests bench
	$(BIN)/ruff format --check biokin_nb tests bench

test: setup debs lint
	$(BIN)/python -m pytest -q -ra

notebooks: setup debs
	$(BIN)/python -m biokin_nb.notebooks --out build/notebooks

# Per-clip HTML reports and an index: `make reports PARAMS=my_clips.yaml` (default: the example).
PARAMS ?= data/reports/example.yaml
reports: setup debs
	$(BIN)/biokin report --params $(PARAMS)

# The shipped CPU checkpoint (data/checkpoints/cpu_odah128.md): generate its dataset, train,
# evaluate on the unseen test subjects. About 3 min + 70 min + 5 min on 2 idle cores.
CKPT_DATA := build/checkpoint/data
CKPT_RUN := build/checkpoint/run
checkpoint: setup debs
	$(BIN)/biokin generate -o $(CKPT_DATA) --subjects 60 --clips-per-subject 2 --size 128 \
	  --duration 3 --fps 30 --seed 1 --workers 2
	$(BIN)/biokin train $(CKPT_DATA) -o $(CKPT_RUN) --preset cpu --stage1-epochs 7 \
	  --stage2-epochs 3 --stage3-epochs 6 --batch-size 2 --lr 1e-3 --max-steps 150 --seed 0
	mkdir -p data/checkpoints
	cp $(CKPT_RUN)/final.pt data/checkpoints/cpu_odah128.pt
	cp $(CKPT_RUN)/metrics.jsonl data/checkpoints/cpu_odah128_metrics.jsonl
	$(BIN)/biokin eval $(CKPT_DATA) -c data/checkpoints/cpu_odah128.pt --split test \
	  -o data/checkpoints/cpu_odah128_test.csv

bench: setup
	$(BIN)/python bench/fk.py

clean:
	rm -rf build .pytest_cache .ruff_cache
