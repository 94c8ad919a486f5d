#!/usr/bin/env bash
# The one test command (README "How to test"). Installs what the tests need on a fresh
# Debian machine, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
# The dashboard's browser test (bridge/tests/e2e/dashboard_browser.rs) drives Debian's Chromium
# with Node; mosquitto_sub watches the mesh.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v mosquitto_sub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
# The clock-jump fault test (bridge/tests/e2e/faults/clock_jump.rs) runs the bridge under libfaketime.
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || need_apt+=(faketime)
# Home Assistant's venv (bridge/tests/e2e/ha_live.rs) needs venv and pip of Python 3.11.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "== Home Assistant 2024.3.3 venv (about a minute when missing)"
export HA_VENV=${HA_VENV:-$PWD/.venv-ha}
ha-discovery/validate/venv.sh "$HA_VENV"

if [ ! -d e2e/node_modules/playwright-core ]; then
  echo "installing the browser test's npm packages (e2e/package-lock.json)"
  npm ci --prefix e2e --no-audit --no-fund
fi
testkit/ocpp-peers/npm/setup.sh  # the OCPP tests' npm central system (ocpp-rpc, package-lock.json)
testkit/ocpp-peers/python/setup.sh  # their PyPI ocpp central system (a venv beside it)

echo "== no_std build of the node core"
cargo build -p ctrl22-node --no-default-features --lib

echo "== the bridge without the simulator (feature demo off)"
cargo check -p ctrl22-bridge --no-default-features --bin ctrl22-bridge

echo "== deployment checks (docker/, charts/; no Docker engine needed)"
scripts/check-deploy.sh

echo "== workspace tests"
cargo test --workspace --all-features
