# falco-probes: the commands a newcomer runs. See README.md.
#   make demo   build real probes for real Debian kernels, publish to a folder, serve the site
#               (options for `falco-probes demo`: make demo ARGS=--no-serve)
#   make test   lint, type-check and run every test (installs what the tests need)
#   make rehearse  the nightly workflow itself, end to end, against a fake GitHub

# The distro's own interpreter, not whichever python3 comes first on PATH: a fresh
# Debian 12 has 3.11.2 (Debian 13: 3.13), and that is the floor we promise.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= demo
PORT   ?= 8000
ARGS   ?=
REHEARSAL ?= rehearsal

# The site stays on MkDocs 1.6.1 + Material 9.8.2 by a recorded decision (docs/engine.md):
# their end-of-life notice is silenced here, where that decision is acted on, and in CI.
export NO_MKDOCS_2_WARNING := 1

# Debian packages. The demo needs the compiler toolchain kbuild runs (clang, llc, make,
# libelf), the gcc its Debian 12 kernels were built with for their kernel modules (gcc-12,
# its arm64 cross compiler, and pahole for 6.12's module BTF: docs/kernel-module.md),
# Python's venv, and QEMU with a static busybox for the load test's VMs (qemu-system-arm
# has qemu-system-aarch64, for the arm64 kernels); the tests also build RPMs (rpm, cpio),
# drive the site in Chromium and read the repository with git.
DEMO_PACKAGES := clang llvm make libelf-dev gcc-12 gcc-12-aarch64-linux-gnu pahole \
	python3-venv ca-certificates qemu-system-x86 qemu-system-arm busybox-static
TEST_PACKAGES := $(DEMO_PACKAGES) rpm cpio chromium git
# Optional packages: installed only where this Debian's archive offers them, skipped
# (silently) where it does not. virtiofsd is the load test's virtiofs daemon for kernels
# without 9p (the cloud-amd64 flavour): Debian 13 has it as a package of its own, Debian 12
# has no such package and ships QEMU 7.2's inside qemu-system-x86 (qemu-system-common).
DEMO_OPTIONAL_PACKAGES := virtiofsd
TEST_OPTIONAL_PACKAGES := $(DEMO_OPTIONAL_PACKAGES)

.PHONY: deps demo-deps test-deps venv venv-dev test lint typecheck pytest demo site serve \
	bench matrix rehearse clean

# Install the Debian packages of $(1) that are missing, saying which and why ($(2)), and
# those of the optional packages $(3) that are missing and that the archive offers
# (`apt-cache show` knows them), asked before apt-get update (from the lists this machine
# has: a Debian 12 that has everything does not update for nothing) and again after it
# (a fresh machine's lists may not know them yet).
define apt_install
	@absent() { for p in "$$@"; do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done; }; \
	offered() { for p in "$$@"; do if apt-cache show $$p >/dev/null 2>&1; then echo $$p; fi; \
		done; }; \
	missing=$$(absent $(1)); optional=$$(absent $(3)); \
	if [ -n "$$missing$$(offered $$optional)" ]; then \
		echo "==> installing Debian packages for $(2):" $$missing \
			$${optional:+(and, where the archive offers them: $$optional)} >&2; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -q && missing="$$missing $$(offered $$optional)" && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	else \
		echo "==> Debian packages for $(2): all installed" >&2; \
	fi
endef

demo-deps:
	$(call apt_install,$(DEMO_PACKAGES),the demo,$(DEMO_OPTIONAL_PACKAGES))

test-deps:
	$(call apt_install,$(TEST_PACKAGES),the tests,$(TEST_OPTIONAL_PACKAGES))

deps: test-deps

# The venv remembers which interpreter built it: a different one rebuilds it.
$(BIN)/.python: FORCE
	@want="$$(readlink -f $$(command -v $(PYTHON)))"; \
	if [ ! -x $(BIN)/python ] || [ "$$(cat $@ 2>/dev/null)" != "$$want" ]; then \
		echo "==> creating $(VENV) with $$want ($$($(PYTHON) --version))" >&2; \
		rm -rf $(VENV) && $(PYTHON) -m venv $(VENV) && echo "$$want" > $@; \
	fi

$(BIN)/.installed: pyproject.toml $(BIN)/.python
	@echo "==> installing falco-probes and its Python dependencies into $(VENV)" >&2
	$(BIN)/pip install --disable-pip-version-check --progress-bar on -e .
	@touch $@

$(BIN)/.installed-dev: pyproject.toml $(BIN)/.installed
	@echo "==> installing the test tools (pytest, ruff, mypy, playwright) into $(VENV)" >&2
	$(BIN)/pip install --disable-pip-version-check --progress-bar on -e '.[dev]'
	@touch $@

venv: $(BIN)/.installed

venv-dev: $(BIN)/.installed-dev

lint: venv-dev
	@echo "==> ruff" >&2
	$(BIN)/ruff check builder tests bench
	@echo "==> zizmor (the GitHub workflows)" >&2
	$(BIN)/zizmor --offline --persona auditor --quiet .github/

typecheck: venv-dev
	@echo "==> mypy" >&2
	$(BIN)/mypy

pytest: test-deps venv-dev
	@echo "==> pytest ($$($(BIN)/python --version))" >&2
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: test-deps venv-dev lint typecheck pytest

demo: demo-deps venv
	$(BIN)/falco-probes demo --out $(DEMO) --port $(PORT) $(ARGS)

# The site: pages and JSON API generated from catalog/ into .site/, rendered by the engine
# into site/ (docs/site.md); serve rebuilds what changed when its inputs change.
site: venv
	$(BIN)/falco-probes site build

serve: venv
	$(BIN)/falco-probes site serve --port $(PORT)

# .github/workflows/nightly.yml run here: real kernels, compiles and mkdocs, a fake GitHub.
rehearse: test-deps venv-dev
	$(BIN)/python tests/helpers/rehearse.py --out $(REHEARSAL)

bench: test-deps venv-dev
	$(BIN)/python -m bench

# Every driver version against one kernel of every Debian series and arch (docs/compatibility.md);
# e.g. make matrix ARGS="--config probes.yaml --libs-archive file:///srv/libs/{ref}.tar.gz"
matrix: demo-deps venv
	$(BIN)/python -m bench.matrix $(ARGS)

clean:
	rm -rf site build $(DEMO) $(REHEARSAL) .pytest_cache .mypy_cache .ruff_cache

FORCE:
