# ShaleDB: `make run` starts the shell on ./data, `make test` runs the whole suite.
# Both create .venv when needed; `make run` installs only what ShaleDB needs to run,
# `make test` and `make lint` add their tools on top.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check
# The working tree's code is what runs. The "compat" editable mode puts the tree on
# sys.path with one .pth file: no import hook, and none of the build backend's
# warning banner that the default editable mode prints on every install.
EDITABLE := --config-settings editable_mode=compat
STAMP       := $(VENV)/.installed
TEST_STAMP  := $(VENV)/.installed-test
LINT_STAMP  := $(VENV)/.installed-lint

BENCH_STAMP := $(VENV)/.bench-installed
WHEEL_DIR   := build/wheel-test

.PHONY: run test test-programs lint wheel-test bench bench-quick bench-scale bench-network bench-redis bench-background soak clean

# Debian packages the RESP tests and bench-redis run (redis-cli, redis-server,
# redis-benchmark, nutcracker): installed with apt-get only when a program is missing,
# through sudo only when not root. A failed install leaves the tests to skip loudly.
REDIS_PACKAGES := redis-tools redis-server nutcracker

# Run time: the package, its dependencies and the server's event loop; nothing else.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) $(EDITABLE) -e '.[server]'
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PIP) $(EDITABLE) -e '.[server,test]'
	touch $(TEST_STAMP)

$(LINT_STAMP): $(STAMP)
	$(PIP) $(EDITABLE) -e '.[server,test,lint]'
	touch $(LINT_STAMP)

run: $(STAMP)
	$(VENV)/bin/shaledb shell --data-dir ./data

test-programs:
	@missing=""; \
	for prog in redis-cli redis-server redis-benchmark nutcracker; do \
	  PATH="$$PATH:/usr/sbin:/sbin" command -v $$prog >/dev/null 2>&1 || missing="$$missing $$prog"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing $(REDIS_PACKAGES) (missing:$$missing)"; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
	  { $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	    $$sudo apt-get install -y -q --no-install-recommends $(REDIS_PACKAGES); } \
	    || echo "WARNING: could not install $(REDIS_PACKAGES); their tests will be skipped"; \
	fi

test: $(TEST_STAMP) test-programs
	$(PY) -m pytest -q
	$(PY) -m pytest -q --doctest-modules shaledb

$(BENCH_STAMP): $(TEST_STAMP) bench/requirements.txt
	$(PY) -m pip install --quiet -r bench/requirements.txt
	touch $(BENCH_STAMP)

# Every peer in one run at 1,000,000 keys; writes docs/benchmarks.md and its chart.
bench: $(BENCH_STAMP)
	$(PY) -m bench.run

# The same phases at 20,000 keys, in a minute or two (kept out of docs/: bench/results/).
bench-quick: $(BENCH_STAMP)
	mkdir -p bench/results
	$(PY) -m bench.run --quick --output bench/results/benchmarks-quick.md

# ShaleDB alone at 10,000,000 keys (load rate, peak RSS, disk bytes, reads).
bench-scale: $(BENCH_STAMP)
	$(PY) -m bench.scale

# 1M random puts, gets and a scan with tables built in the worker process and on the
# background thread; the cost of shipping a flush to the worker.
bench-background: $(STAMP)
	$(PY) -m bench.background --puts 1000000 --shipping

# The server over the JSON-lines protocol, 1 and 50 clients, with and without pipelining.
bench-network: $(STAMP)
	$(PY) bench/bench_network.py --fsync everysec,always --output docs/benchmarks.md

# redis-benchmark against ShaleDB and against redis-server, in one run.
bench-redis: $(TEST_STAMP) test-programs
	$(PY) bench/bench_redis.py --output docs/benchmarks.md

# 16 clients over a server SIGKILLed every 5-20 s, every reply checked against a model;
# 10 minutes in each of everysec and always -> the Soak section of docs/reliability.md.
soak: $(TEST_STAMP)
	$(PY) -m bench.soak --duration 600 --clients 16 --fsync everysec,always --output docs/reliability.md

# The installed path: build the wheel, install it (not editable) into a fresh venv and
# run the version, a shell script and a server round trip from it (.ci/wheel-test).
wheel-test: $(STAMP)
	rm -rf $(WHEEL_DIR)
	$(PY) -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir $(WHEEL_DIR) .
	rm -rf build/lib build/bdist.*  # what the in-tree build leaves
	.ci/wheel-test $(PYTHON) $(WHEEL_DIR)

lint: $(LINT_STAMP)
	$(VENV)/bin/ruff check shaledb tests bench
	$(VENV)/bin/ruff format --check shaledb tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
