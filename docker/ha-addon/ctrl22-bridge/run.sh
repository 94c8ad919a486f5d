#!/usr/bin/with-contenv bashio
# shellcheck shell=bash
# Starts the bridge in the app: the broker and its credentials from the MQTT service of the
# Mosquitto broker app, the rest from the app's options (options-env.sh), over an optional
# ctrl22.toml in the app's config folder for what the options do not cover.
set -euo pipefail

if ! bashio::services.available mqtt; then
    bashio::exit.nok "No MQTT broker: install and start the Mosquitto broker app."
fi
scheme=mqtt
if bashio::var.true "$(bashio::services mqtt ssl)"; then
    scheme=mqtts
fi
host=$(bashio::services mqtt host)
port=$(bashio::services mqtt port)
username=$(bashio::services mqtt username)
password=$(bashio::services mqtt password)

# shellcheck source=options-env.sh
. /options-env.sh /data/options.json

CTRL22_MQTT__URL=$(toml_string "${scheme}://${host}:${port}")
CTRL22_MQTT__USERNAME=$(toml_string "$username")
CTRL22_MQTT__PASSWORD=$(toml_string "$password")
export CTRL22_MQTT__URL CTRL22_MQTT__USERNAME CTRL22_MQTT__PASSWORD
unset username password

if [ -f /config/ctrl22.toml ]; then
    bashio::log.info "Using /config/ctrl22.toml below the app's options"
    export CTRL22_CONFIG=/config/ctrl22.toml
fi

bashio::log.info "Starting the bridge for site ${site_name} on ${scheme}://${host}:${port}"
exec /usr/bin/ctrl22-bridge run
