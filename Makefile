# The two README commands. Both create or reuse .venv and install only when
# the dependency list changed (a stamp file keyed on pyproject.toml).
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.spikeport-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)
DEMO_DIR ?= out/demo

.PHONY: demo test install bench clean

install: $(STAMP)

$(STAMP):
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "pip>=23" setuptools wheel
	# torch==2.13.0 is pinned: pip takes the local CPU build, never a CUDA one
	# the [ray] extra: `--cluster` and tests/test_scaleout_ray.py (it pins no torch or numpy)
	$(PY) -m pip install -q --disable-pip-version-check -e ".[test,ray]"
	# lava-nc 0.10.0 declares python<3.11: its deps are pinned in pyproject.toml
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --ignore-requires-python lava-nc==0.10.0
	# NIR peers for tests/test_nir_peers.py and examples/nir_peers.py: --no-deps so that they never
	# replace torch (their other imports, nir, numpy, torch, are already pinned above)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps snntorch==1.0.0 nirtorch==2.6 norse==1.1.0
	# lava-dl 0.6.0 (tests and benchmarks: SLAYER blocks, netx) declares python<3.11 and pins torch 2.3,
	# torchvision, OpenCV it does not need for netx/slayer; its object_detection subpackage is
	# stubbed in one place (backends/lava/compat.py, import_lava_dl)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --ignore-requires-python lava-dl==0.6.0
	# compile every numba kernel (cache=True) once, into __pycache__ beside its source: a fresh
	# clone has no cache, and the tests and the first demo would each compile them (~100 s of CPU)
	$(PY) scripts/compile_kernels.py
	rm -f $(VENV)/.spikeport-*
	touch $@

demo: $(STAMP)
	$(VENV)/bin/spikeport demo --out $(DEMO_DIR)

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/emulator_vs_lava.py
	$(PY) benchmarks/qat_train_step.py
	$(PY) benchmarks/ttfs_layer.py
	$(PY) benchmarks/scaleout.py
	$(PY) benchmarks/netx_vs_lava.py
	$(PY) benchmarks/smooth_epoch.py

clean:
	rm -rf out .pytest_cache .hypothesis
