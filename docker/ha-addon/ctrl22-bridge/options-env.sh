# shellcheck shell=bash
# Sourced by run.sh (and by scripts/check-deploy.sh, against the default options): exports
# the bridge's CTRL22_<SECTION>__<KEY> variables for the app options in the JSON file "$1"
# (/data/options.json in the app). A required option that is missing fails the caller.

options_file=$1

# The option's value as text; fails when it is missing or null.
option() {
    jq -er --arg key "$1" '.[$key] | select(. != null) | tostring' "$options_file"
}

# "$1" as a quoted TOML string: the bridge reads an unquoted variable like 4711 or true as a
# number or a boolean, which a string key refuses (JSON's escapes are TOML's too).
toml_string() {
    jq -rn --arg value "$1" '$value | tojson'
}

site_name=$(option site_name)
CTRL22_SITE__NAME=$(toml_string "$site_name")
# One substitution per assignment: in "[$(a), $(b)]" only the last one's failure would count.
max_current_l1=$(option max_current_l1)
max_current_l2=$(option max_current_l2)
max_current_l3=$(option max_current_l3)
CTRL22_SITE__MAX_CURRENT="[${max_current_l1}, ${max_current_l2}, ${max_current_l3}]"
CTRL22_SITE__STRATEGY=$(option strategy)
CTRL22_SITE__DEFAULT_MODE=$(option default_mode)
CTRL22_MESH__TRANSPORT=$(option mesh_transport)
mesh_id=$(option mesh_id)
CTRL22_MESH__MESH_ID=$(toml_string "$mesh_id")
CTRL22_MESH__TCP_LISTEN=0.0.0.0:8070
CTRL22_HOMEASSISTANT__ENABLED=true
discovery_prefix=$(option discovery_prefix)
CTRL22_HOMEASSISTANT__DISCOVERY_PREFIX=$(toml_string "$discovery_prefix")
CTRL22_MQTT__CLIENT_ID=$(toml_string "ctrl22-bridge-${site_name}")
# Ingress reaches the app on its ingress_port; the store lives in the app's /data.
CTRL22_HTTP__LISTEN=0.0.0.0:8099
CTRL22_STORAGE__PATH=/data/ctrl22.db
RUST_LOG="$(option log_level),rumqttd=warn"
export CTRL22_SITE__NAME CTRL22_SITE__MAX_CURRENT CTRL22_SITE__STRATEGY \
    CTRL22_SITE__DEFAULT_MODE CTRL22_MESH__TRANSPORT CTRL22_MESH__MESH_ID \
    CTRL22_MESH__TCP_LISTEN CTRL22_HOMEASSISTANT__ENABLED \
    CTRL22_HOMEASSISTANT__DISCOVERY_PREFIX CTRL22_MQTT__CLIENT_ID CTRL22_HTTP__LISTEN \
    CTRL22_STORAGE__PATH RUST_LOG

# Optional: without a token the HTTP API is read-only.
if http_token=$(option http_token) && [ -n "$http_token" ]; then
    CTRL22_HTTP__TOKEN=$(toml_string "$http_token")
    export CTRL22_HTTP__TOKEN
fi
unset http_token max_current_l1 max_current_l2 max_current_l3 mesh_id discovery_prefix
