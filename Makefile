# falco-probes: the commands a newcomer runs. See README.md.
#   make demo   build real probes for real Debian kernels, publish to a folder, serve the site
#   make test   lint, type-check and run every test (installs what the tests need)
#   make rehearse  the nightly workflow itself, end to end, against a fake GitHub

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= demo
PORT   ?= 8000
REHEARSAL ?= rehearsal

# Debian packages the builder and the tests use: the compiler toolchain for
# kbuild, rpm for the RPM tests, chromium for the site's browser tests.
DEB_PACKAGES := clang llvm make libelf-dev rpm cpio chromium python3-venv ca-certificates apt-utils git

.PHONY: deps venv test lint typecheck pytest demo site serve bench clean rehearse

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing >&2; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

lint: venv
	$(BIN)/ruff check builder tests bench
	$(BIN)/zizmor --offline --persona auditor --quiet .github/

typecheck: venv
	$(BIN)/mypy

pytest: deps venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: deps venv lint typecheck pytest

demo: deps venv
	$(BIN)/falco-probes demo --out $(DEMO) --port $(PORT)

site: venv
	$(BIN)/mkdocs build --strict

serve: venv
	$(BIN)/mkdocs serve

# .github/workflows/nightly.yml run here: real kernels, compiles and mkdocs, a fake GitHub.
rehearse: deps venv
	$(BIN)/python tests/rehearse.py --out $(REHEARSAL)

bench: deps venv
	$(BIN)/python -m bench

clean:
	rm -rf site build $(DEMO) $(REHEARSAL) .pytest_cache .mypy_cache .ruff_cache
