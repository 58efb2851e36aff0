#!/usr/bin/env bash
# Install Debian's Prometheus (`prometheus`, `promtool`) and Alertmanager (`prometheus-alertmanager`) when
# missing, for tests/prometheus/ (required in CI through STRATUS_REQUIRE_PROMETHEUS=1). Needs root (CI runs
# as root). The tests start their own servers on loopback ports with tmp storage, so the Debian services
# must not run: policy-rc.d forbids starting them during the install, and any that started anyway (a
# running systemd ignores policy-rc.d) are stopped and disabled afterwards. Idempotent.
set -euo pipefail

have_all() {
  command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 \
    && command -v prometheus-alertmanager >/dev/null 2>&1
}

if ! have_all; then
  export DEBIAN_FRONTEND=noninteractive
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    # exit 101 = "action forbidden": invoke-rc.d then skips starting the services the packages ship
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    own_policy=1
  fi
  trap '[ "$own_policy" = 1 ] && rm -f "$policy"' EXIT
  apt-get update -q
  apt-get install -y -q --no-install-recommends prometheus prometheus-alertmanager
fi

# A booted systemd starts the units regardless of policy-rc.d: stop and disable them so only the tests'
# own servers run.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  for unit in prometheus prometheus-alertmanager; do
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi
have_all || { echo "ci: prometheus, promtool or prometheus-alertmanager still missing after apt-get" >&2; exit 1; }
prometheus --version 2>&1 | head -n 1
