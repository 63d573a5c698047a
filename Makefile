# Two commands: `make run` (set up and start the app) and `make test` (set up and run the tests).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= localhost
PORT   ?= 8501

.PHONY: run test setup setup-dev system system-test bench load-test gpu-check screenshots clean

run: setup system
	$(VENV)/bin/streamlit run app.py --server.address $(HOST) --server.port $(PORT) --browser.gatherUsageStats false

test: setup-dev system-test
	$(PY) -m pytest -q

setup: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

system:
	scripts/setup_system.sh

system-test:
	scripts/setup_system.sh --test

bench: setup-dev system
	$(PY) -m pip install -q -r benchmarks/requirements.txt
	$(PY) benchmarks/bench_summary.py
	$(PY) benchmarks/bench_graph.py
	$(PY) benchmarks/bench_latency_overhead.py --threads 1
	$(PY) benchmarks/bench_profile.py
	$(PY) benchmarks/bench_lab.py
	$(PY) benchmarks/bench_cold_start.py
	$(PY) benchmarks/bench_diagram_browser.py
	$(PY) benchmarks/bench_app_vs_cli.py

load-test: setup-dev system-test
	$(PY) benchmarks/load_test.py

screenshots: setup-dev system-test  # refresh the README's screenshots in assets/
	SCREENSHOT_DIR=assets $(PY) -m pytest -q tests/test_browser.py

gpu-check: setup
	PYTHON=$(PY) scripts/gpu_check.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
