# Set-up is part of every target: a fresh clone needs nothing but python3 (3.11+), node 20 and npm.
PY := .venv/bin/python
VENV_STAMP := .venv/.installed
NODE_STAMP := interop/node_modules/.installed

# mypy --strict on these; plain `mypy` checks the list in pyproject.toml ([tool.mypy] files), which grows
# to the whole package.
MYPY_STRICT := hypernode/__init__.py hypernode/errors.py hypernode/varint.py hypernode/protobuf.py \
	hypernode/messages hypernode/wire hypernode/replication hypernode/feed.py

.PHONY: demo test bench lint typecheck wheel-smoke

demo: $(VENV_STAMP) $(NODE_STAMP)
	.venv/bin/hypernode demo

test: $(VENV_STAMP) $(NODE_STAMP) typecheck wheel-smoke
	.venv/bin/ruff check hypernode tests interop conftest.py protocol
	CI=$${CI:-} .venv/bin/pytest -q -p no:cacheprovider

typecheck: $(VENV_STAMP)
	.venv/bin/mypy
	.venv/bin/mypy --strict $(MYPY_STRICT)

# the wheel, installed in a fresh virtualenv outside the checkout, runs: import, --help, create/share/clone
wheel-smoke: $(VENV_STAMP)
	$(PY) tests/tools/wheel_smoke.py

bench: $(VENV_STAMP) $(NODE_STAMP)
	$(PY) interop/bench/feed_bench.py
	$(PY) interop/bench/wire_bench.py
	$(PY) interop/bench/replication_bench.py
	$(PY) interop/bench/replication_bench.py --rss-gib 1
	$(PY) interop/bench/drive_bench.py
	$(PY) interop/bench/multi_bench.py
	$(PY) interop/bench/load_bench.py
	$(PY) interop/bench/clone_bench.py

lint: $(VENV_STAMP)
	.venv/bin/ruff check hypernode tests interop conftest.py protocol

$(VENV_STAMP): pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[test]'
	touch $@

$(NODE_STAMP): interop/package.json interop/package-lock.json
	cd interop && npm ci --no-audit --no-fund --loglevel=error
	touch $@
