#!/usr/bin/env bash
# Dump ctrl22-ha's discovery payloads (site + two bays, both modes) and validate every
# component against Home Assistant's own MQTT platform schemas.
# Usage: ha-discovery/validate/check.sh [VENV]
#   VENV defaults to $HA_VENV or ~/.cache/ctrl22-ha-venv and is created if missing (venv.sh).
#   LIVE=1 also runs live_check.py (needs mosquitto; starts hass, about a minute).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${1:-${HA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ctrl22-ha-venv}}
dump=${CTRL22_HA_DUMP_DIR:-$(mktemp -d)}

"$here/venv.sh" "$venv"

(cd "$root" && CTRL22_HA_DUMP_DIR="$dump" \
    cargo test -q -p ctrl22-ha --test snapshots -- --ignored dump_discovery --nocapture)

# Run from a neutral directory: Home Assistant's package names (select, datetime) would shadow
# the standard library if the working directory were inside homeassistant/components.
cd "$dump"
status=0
for f in discovery-device.jsonl discovery-entity.jsonl; do
    echo "== $f"
    "$venv/bin/python" "$here/validate_schemas.py" -v "$f" || status=1
done
if [ "${LIVE:-0}" = 1 ]; then
    echo "== live check (per-entity discovery into Home Assistant over mosquitto)"
    "$venv/bin/python" "$here/live_check.py" discovery-entity.jsonl || status=1
fi
exit $status
