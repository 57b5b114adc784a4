# radraft: `make demo` runs the whole chain on embedded defaults; `make test` sets up and tests.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# vLLM lives in a virtual environment of its own, outside the checkout, kept between runs.
VLLM_VENV ?= $(HOME)/.cache/radraft/vllm-venv
export VLLM_VENV
APT_PACKAGES := dcmtk dicom3tools orthanc orthanc-dicomweb chromium chromium-driver docker-compose strace iproute2 systemd
# The C extension (the frames' slice kernel) is built by the editable install: its source
# is part of the stamp, so an edit rebuilds it.
NATIVE := reporting/frames/_slice_kernel.c
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(NATIVE) | sha1sum | cut -c1-12)

.PHONY: demo test venv compiler system services lint pytest vllm-venv ohif migration clean

demo: $(STAMP)
	$(BIN)/radraft demo

test: system $(STAMP) services vllm-venv ohif lint pytest

$(STAMP): pyproject.toml $(NATIVE) | compiler
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	# torch is pinned to the CPU wheel: an unpinned torch pulls gigabytes of CUDA packages.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[model,postgres,test,dev]'
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

# The slice kernel needs a C compiler and Python's headers to install (`make demo` on a
# bare machine too); Debian's own python3 keeps its headers in python3-dev.
compiler:
	@command -v cc >/dev/null || { echo "installing a C compiler (gcc) for the slice kernel"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev; }
	@$(PY) -c "import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
	  || { echo "installing python3-dev (Python.h) for the slice kernel"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-dev; }

system:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

services:
	@bash .ci/services.sh

vllm-venv:
	@bash deploy/vllm/make-venv.sh "$(VLLM_VENV)"

# OHIF's prebuilt viewer (npm @ohif/app dist/, pinned) for the viewer test; kept between runs.
ohif:
	@bash deploy/viewer/fetch-ohif.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

migration: $(STAMP)
	$(BIN)/python -m radraft.core.db.regen_initial

clean:
	rm -rf $(VENV) radraft-data
