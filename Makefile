# Two commands a user needs: `make demo` and `make test`. Both bootstrap .venv from nothing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?=

.PHONY: install demo test test-fast bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -e ".[all,test]" $(TORCH_PIN)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/visionzoo demo slimclr

# one worker per core: the suite is many small CPU-bound tests plus a few multi-minute proxies
XDIST := -n auto --dist worksteal

test: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST) $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST) -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/visionzoo bench all

clean:
	rm -rf $(VENV) runs .pytest_cache
