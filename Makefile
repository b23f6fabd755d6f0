# Two commands on a fresh machine with only Python 3.11+ and make:
#   make demo   a three-chapter federation on loopback, end to end
#   make test   the whole test suite
PYTHON ?= python3
PREFIX ?= $(HOME)/.local
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench hardening translations install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m node.dev.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench

hardening: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,hardening]'
	$(BIN)/python -m hardening

# chapter-node on the PATH: a link to this checkout's .venv (move the checkout, run it again)
install: $(STAMP)
	mkdir -p $(PREFIX)/bin
	ln -sf $(CURDIR)/$(BIN)/chapter-node $(PREFIX)/bin/chapter-node
	@echo "chapter-node is in $(PREFIX)/bin"; case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; \
	  *) echo "add it to your PATH: export PATH=\"$(PREFIX)/bin:\$$PATH\"";; esac

# After changing a page's words: refresh the catalogs, then translate what is new or fuzzy
# (tests/test_web_i18n.py fails until every language has every message).
translations: $(STAMP)
	$(BIN)/pybabel --quiet extract -F babel.cfg -o node/locale/messages.pot --no-location \
		--sort-output --project chapter-node --copyright-holder "chapter-node contributors" .
	$(BIN)/pybabel --quiet update -i node/locale/messages.pot -d node/locale

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist *.egg-info
