# convscope: every target sets up .venv on its own, so a fresh clone needs only
# `make serve` or `make test`.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# pip runs again only when pyproject.toml is newer than this stamp.
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
SHARED ?= ../shared
PYTEST_ARGS ?=
# One BLAS thread per process: the machines have 2 cores, and a test process that
# also starts a server and a browser would otherwise oversubscribe them.
export OPENBLAS_NUM_THREADS ?= 1
# Installed together with Debian's chromium: a CJK font so that zh-CN pages render
# (and their screenshots are readable) instead of showing empty boxes.
BROWSER_PACKAGES := chromium fonts-wqy-microhei

.PHONY: help setup serve test chromium redis lint format screenshots bench \
	train-tiny-vgg train-lenet5 evaluate clean distclean

help:
	@echo "make serve        start the server on http://$(HOST):$(PORT) (HOST=, PORT= to change)"
	@echo "make test         run the whole test suite (engine, app, browser)"
	@echo "make lint         ruff check and ruff format --check"
	@echo "make format       ruff format and ruff check --fix"
	@echo "make screenshots  refresh docs/screenshots/*.png from the browser tests"
	@echo "make bench        engine and server benchmarks"
	@echo "make train-tiny-vgg / train-lenet5 / evaluate   train and evaluate the built-in models"
	@echo "make clean        remove caches; make distclean also removes .venv"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
		rm -rf $(VENV); \
		echo "Creating $(VENV) with $$($(PYTHON) --version 2>&1)"; \
		$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
			echo "error: '$(PYTHON) -m venv' failed. On Debian/Ubuntu: apt-get install python3-venv" >&2; \
			exit 1; }; \
	fi
	@echo "Installing convscope and its dev tools into $(VENV) (pip install -e '.[dev]')"
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

# Debian's chromium drives the browser tests (`playwright install` is never used), and
# Debian's redis-server the tests of several server processes sharing one Redis.
chromium:
	@scripts/ensure-debian-packages.sh chromium CONVSCOPE_SKIP_BROWSER "the browser tests" \
		$(BROWSER_PACKAGES)

redis:
	@scripts/ensure-debian-packages.sh redis-server CONVSCOPE_SKIP_REDIS "the Redis tests" \
		redis-server

serve: $(STAMP)
	$(VENV)/bin/convscope serve --host $(HOST) --port $(PORT)

test: $(STAMP) chromium redis
	$(PY) -m pytest tests $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

screenshots: $(STAMP) chromium
	CONVSCOPE_SCREENSHOTS=1 $(PY) -m pytest tests/browser $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/engine.py
	$(PY) benchmarks/server.py

# The shipped tiny-vgg: a 12-epoch cosine cycle, then a second short cycle resumed from its
# checkpoint (docs/models.md). Each step resumes where an interrupted run stopped.
TINY_VGG_TRAIN = $(VENV)/bin/convscope train tiny-vgg --data $(SHARED)/datasets/cifar10_train.npz \
	--lr 0.03 --seed 1 --out runs/tiny-vgg --resume

train-tiny-vgg: $(STAMP)
	$(TINY_VGG_TRAIN) --epochs 12
	$(TINY_VGG_TRAIN) --epochs 17

train-lenet5: $(STAMP)
	$(VENV)/bin/convscope train lenet5 --data $(SHARED)/datasets/mnist_train.npz \
		--epochs 12 --lr 0.03 --crop-padding 2 --no-flip --seed 1 --out runs/lenet5

evaluate: $(STAMP)
	$(VENV)/bin/convscope evaluate tiny-vgg --data $(SHARED)/datasets/cifar10_test.npz
	$(VENV)/bin/convscope evaluate lenet5 --data $(SHARED)/datasets/mnist_test.npz

clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis build *.egg-info .chromium-install.log
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
