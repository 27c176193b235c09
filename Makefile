# Set-up is part of every target: a fresh clone needs nothing but python3 (3.11+), node 20 and npm.
PY := .venv/bin/python
VENV_STAMP := .venv/.installed
NODE_STAMP := interop/node_modules/.installed
# the current-generation JS stack (hypercore 11), a separate npm project beside the hypercore 9 one;
# installing one never reinstalls the other
NODE11_STAMP := interop/v11/node_modules/.installed

# mypy --strict on these; plain `mypy` checks the whole package (pyproject.toml, [tool.mypy] files).
MYPY_STRICT := hypernode/__init__.py hypernode/errors.py hypernode/varint.py hypernode/protobuf.py \
	hypernode/messages hypernode/wire hypernode/utp hypernode/replication hypernode/feed.py
MYPY_STRICT += hypernode/tasks.py hypernode/discovery hypernode/corestore.py hypernode/node.py hypernode/demo.py \
	hypernode/limits.py hypernode/core11 hypernode/keys.py

# the suite runs in TEST_WORKERS processes (pytest-xdist): most tests wait on sockets, subprocesses and
# the JS peers, so three share two cores well (make test TEST_WORKERS=0 runs it in one process)
TEST_WORKERS ?= 3

.PHONY: demo test bench lint typecheck wheel-smoke browser nat-tools

demo: $(VENV_STAMP) $(NODE_STAMP)
	.venv/bin/hypernode demo

test: $(VENV_STAMP) $(NODE_STAMP) browser nat-tools typecheck wheel-smoke
	.venv/bin/ruff check hypernode tests interop conftest.py protocol
	CI=$${CI:-} .venv/bin/pytest -q -p no:cacheprovider -n $(TEST_WORKERS)

typecheck: $(VENV_STAMP)
	.venv/bin/mypy
	.venv/bin/mypy --strict $(MYPY_STRICT)

# the wheel, installed in a fresh virtualenv outside the checkout, runs: import, --help, create/share/clone
wheel-smoke: $(VENV_STAMP)
	$(PY) tests/tools/wheel_smoke.py

# the dashboard's browser test drives Debian's chromium (playwright, from the test extras, never
# downloads a browser); installed with apt-get only when it is missing
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

# the NAT tests (tests/test_nat.py) build routers in network namespaces with Debian's iptables (and
# conntrack, to look at their mappings); installed with apt-get only when missing, as root (the tests skip
# without root)
nat-tools:
	@command -v iptables >/dev/null 2>&1 && command -v conntrack >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables conntrack >/dev/null; \
		else echo "make: the NAT tests need Debian's iptables (sudo apt-get install iptables conntrack); they skip without it" >&2; fi; }

bench: $(VENV_STAMP) $(NODE_STAMP)
	$(PY) interop/bench/feed_bench.py
	$(PY) interop/bench/wire_bench.py
	$(PY) interop/bench/replication_bench.py
	$(PY) interop/bench/replication_bench.py --rss-gib 1
	$(PY) interop/bench/drive_bench.py
	$(PY) interop/bench/multi_bench.py
	$(PY) interop/bench/load_bench.py
	$(PY) interop/bench/clone_bench.py
	$(PY) interop/bench/mount_bench.py
	$(PY) interop/bench/gateway_bench.py
	$(PY) interop/bench/utp_bench.py
	$(PY) interop/bench/core11_core_bench.py

lint: $(VENV_STAMP)
	.venv/bin/ruff check hypernode tests interop conftest.py protocol

# FUSE for `hypernode mount`: Debian's fuse3 (fusermount3) and libfuse3-dev + pkg-config (pyfuse3 builds
# against them), and rsync for the mount tests; installed with apt-get when missing (as root; otherwise the
# command to run is printed)
FUSE_DEBS := fuse3 libfuse3-dev pkg-config rsync

$(VENV_STAMP): pyproject.toml
	@if dpkg -s $(FUSE_DEBS) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's $(FUSE_DEBS) (for hypernode mount)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(FUSE_DEBS) >/dev/null; \
	else \
	    echo "make: hypernode mount needs Debian's $(FUSE_DEBS): sudo apt-get install $(FUSE_DEBS)" >&2; exit 1; \
	fi
	python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[test]'
	touch $@

# (order-only: building the hypercore 9 stamp also installs the hypercore 11 stack, and a change to one
# lock file reinstalls only its own project)
$(NODE_STAMP): interop/package.json interop/package-lock.json | $(NODE11_STAMP)
	cd interop && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(NODE11_STAMP): interop/v11/package.json interop/v11/package-lock.json
	cd interop/v11 && npm ci --no-audit --no-fund --loglevel=error
	touch $@
