#!/usr/bin/env bash
# Installs what Hearth's tests need on a Debian machine, only what is missing, and says what it installs.
# Quiet (no output, exit 0) when everything is already there; safe to run any number of times.
#
#   scripts/install-test-deps.sh          # install what is missing
#   scripts/install-test-deps.sh --check  # only report what is missing (exit 1 if anything is)
#
# What for:
#   mosquitto         private MQTT brokers in the end-to-end tests (tests/, /usr/sbin/mosquitto)
#   qemu-system-arm   running the firmware on the mps2-an386 board (on-target tests)
#   dbus-daemon       private system buses for the simulated BlueZ in the Bluetooth tests
#   libdbus-1-dev, pkg-config   building btleplug's D-Bus binding (libdbus-sys)
#   chromium          the nurse dashboard's browser tests (headless)
#   libclang-dev, clang   bindgen in nrf-sdc-sys / nrf-mpsl-sys (the nRF52840 board's BLE controller bindings;
#                     clang itself tells bindgen where its own headers such as stdint.h are)
#   postgresql        server binaries (initdb, pg_ctl) for the community hub's tests on a private PostgreSQL
#   rustup target thumbv7em-none-eabihf   building the no_std crates for Cortex-M4F
set -euo pipefail

PACKAGES=(mosquitto qemu-system-arm dbus-daemon libdbus-1-dev pkg-config chromium libclang-dev clang postgresql)
TARGET=thumbv7em-none-eabihf

check_only=false
case "${1:-}" in
    --check) check_only=true ;;
    "") ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done

need_target=false
if command -v rustup >/dev/null 2>&1; then
    rustup target list --installed 2>/dev/null | grep -qx "$TARGET" || need_target=true
else
    echo "install-test-deps: rustup not found; cannot check the $TARGET target" >&2
fi

if $check_only; then
    status=0
    if ((${#missing[@]})); then echo "missing packages: ${missing[*]}"; status=1; fi
    if $need_target; then echo "missing rustup target: $TARGET"; status=1; fi
    exit $status
fi

if ((${#missing[@]})); then
    if [[ $EUID -eq 0 ]]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "install-test-deps: need root (or sudo) to install: ${missing[*]}" >&2
        exit 1
    fi
    echo "install-test-deps: installing ${missing[*]}"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if $need_target; then
    echo "install-test-deps: adding rustup target $TARGET"
    rustup target add "$TARGET" >/dev/null
fi
