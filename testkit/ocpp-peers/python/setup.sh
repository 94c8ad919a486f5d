#!/bin/sh
# Creates the central system's venv (PyPI `ocpp`, `websockets`) beside this script.
set -e
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -r requirements.txt
