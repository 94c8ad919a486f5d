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
CTRL22_MQTT__URL="${scheme}://${host}:${port}"
CTRL22_MQTT__USERNAME=$(bashio::services mqtt username)
CTRL22_MQTT__PASSWORD=$(bashio::services mqtt password)
export CTRL22_MQTT__URL CTRL22_MQTT__USERNAME CTRL22_MQTT__PASSWORD

# shellcheck source=options-env.sh
. /options-env.sh /data/options.json

if [ -f /config/ctrl22.toml ]; then
    bashio::log.info "Using /config/ctrl22.toml below the app's options"
    export CTRL22_CONFIG=/config/ctrl22.toml
fi

bashio::log.info "Starting the bridge for site ${CTRL22_SITE__NAME} on ${CTRL22_MQTT__URL}"
exec /usr/bin/ctrl22-bridge run
