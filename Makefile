SHELL := /bin/bash
# Two commands: `make demo` (install everything, build TinyTracker with QAT, compile it for every
# target) and `make test`. Everything lives in .venv; pins in requirements/.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
OUT ?= runs/tinytracker
# pytest-xdist workers for `make test`: the CI machine has 2 cores (`make test TEST_WORKERS=8` on a bigger one)
TEST_WORKERS ?= 2

.PHONY: demo test check venv java clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements/stack.txt requirements/no-deps.txt setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel 2>&1 | grep -v "is ignored" || true
	$(BIN)/pip install -q -r requirements/stack.txt 2>&1 | grep -v "is ignored" ; test $${PIPESTATUS[0]} -eq 0
	$(BIN)/pip install -q --no-deps -r requirements/no-deps.txt 2>&1 | grep -v "is ignored" ; test $${PIPESTATUS[0]} -eq 0
	$(BIN)/pip install -q --no-deps --no-build-isolation -e . 2>&1 | grep -v "is ignored" ; test $${PIPESTATUS[0]} -eq 0
	touch $@

# imxconv-tf needs Java 17.
java:
	@command -v java >/dev/null || (apt-get update -q && apt-get install -y -q openjdk-17-jre-headless)

demo: venv java
	$(BIN)/zoo build tinytracker --qat --out $(OUT)
	# exit 3 = pre-flight only (edgetpu_compiler is not installed): a report, not a failure
	$(BIN)/python compilers/edgetpu.py $(OUT)/tinytracker_int8.tflite -o $(OUT)/edgetpu; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 3 ]
	$(BIN)/python compilers/imx500.py $(OUT)/tinytracker_int8.tflite -o $(OUT)/imx500
	$(BIN)/python compilers/ethosu.py $(OUT)/tinytracker_int8.tflite -o $(OUT)/ethosu
	$(BIN)/python compilers/mcu.py $(OUT)/tinytracker_int8.tflite -o $(OUT)/mcu

# flake8 (the project's own config in setup.cfg) and mypy on the typed modules, then the suite.
check: venv
	$(BIN)/flake8
	$(BIN)/mypy

test: venv java check
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) tests

clean:
	rm -rf $(VENV) runs
