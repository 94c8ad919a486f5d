#!/usr/bin/env bash
# Creates the Home Assistant 2024.3.3 venv the validation scripts run in, unless it exists.
# Usage: ha-discovery/validate/venv.sh VENV
# HA's wheel ships the exact dependency versions it was released with
# (homeassistant/package_constraints.txt); installing against them is what makes the
# resolver finish and the release import. Needs python3.11 (2024.4+ needs 3.12).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:?usage: venv.sh VENV}
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import homeassistant' 2>/dev/null; then
    exit 0
fi
python=$(command -v python3.11 || command -v python3)
echo "creating the Home Assistant venv in $venv (a few minutes, about 740 MB)" >&2
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip wheel
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$venv/bin/pip" download -q --no-deps homeassistant==2024.3.3 -d "$tmp"
"$venv/bin/python" - "$tmp"/homeassistant-2024.3.3-py3-none-any.whl "$tmp/constraints.txt" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    data = wheel.read("homeassistant/package_constraints.txt")
open(sys.argv[2], "wb").write(data)
PY
"$venv/bin/pip" install -q -c "$tmp/constraints.txt" -r "$here/requirements.txt"
