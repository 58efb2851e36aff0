#!/usr/bin/env bash
# Install Debian's Prometheus (`prometheus`, `promtool`) and Alertmanager (`prometheus-alertmanager`) when
# missing, for tests/prometheus/ (required in CI through STRATUS_REQUIRE_PROMETHEUS=1). Needs root (CI runs
# as root). The tests start their own servers on loopback ports with tmp storage, so the Debian services
# must not run: during the install a policy-rc.d that forbids starting services stands in for whatever
# policy the machine has (restored afterwards), and services that started anyway (a booted systemd
# ignores policy-rc.d) are stopped and disabled. Idempotent; prints Prometheus' version line.
set -euo pipefail

have_all() {
  command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 \
    && command -v prometheus-alertmanager >/dev/null 2>&1
}

if ! have_all; then
  export DEBIAN_FRONTEND=noninteractive
  policy=/usr/sbin/policy-rc.d
  saved=""
  if [ -e "$policy" ]; then
    saved="$(mktemp)"
    cp -p "$policy" "$saved"
  fi
  restore_policy() {
    if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
  }
  trap restore_policy EXIT
  # exit 101 = "action forbidden": invoke-rc.d then does not start the services the packages ship
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  apt-get update -q
  apt-get install -y -q --no-install-recommends prometheus prometheus-alertmanager
  if [ ! -d /run/systemd/system ]; then
    for unit in prometheus prometheus-alertmanager; do
      [ -x "/etc/init.d/$unit" ] && "/etc/init.d/$unit" stop >/dev/null 2>&1 || true
    done
  fi
fi

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  for unit in prometheus prometheus-alertmanager; do
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi
have_all || { echo "ci: prometheus, promtool or prometheus-alertmanager still missing after apt-get" >&2; exit 1; }
prometheus --version 2>&1 | head -n 1
