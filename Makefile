# Mio: two commands on a fresh machine.
#   make demo   installs everything the first time (Debian packages, .venv, models), then renders out/demo.mp4
#   make test   installs if needed, then runs the whole test suite
#   make test-fast   the edit loop: everything but the slow tests (real models, training, browsers)
PY := .venv/bin/python
.PHONY: setup demo test test-fast lint bench

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m mio.cli demo

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	.venv/bin/ruff check mio tests

bench: setup
	$(PY) -m mio.cli bench pipeline
