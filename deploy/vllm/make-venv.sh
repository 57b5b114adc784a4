#!/usr/bin/env bash
# Placeholder until the model issue lands: the vLLM venv is built here.
exit 0
