#!/bin/sh
# Installs the central system's npm packages (ocpp-rpc, pinned by package-lock.json) beside
# this script; does nothing when they are already there.
set -e
cd "$(dirname "$0")"
[ -f node_modules/ocpp-rpc/package.json ] || npm ci --no-audit --no-fund --loglevel=error
