#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine with Rust installed.
#
# It installs nothing silently: scripts/install-test-deps.sh checks for the system packages and rustup target the
# tests need and installs (and names) only what is missing. Tests start their own brokers and databases on free
# ports; they never use services at fixed ports.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
cargo test --workspace --locked
# The sensor-board firmware on an emulated Cortex-M4F (QEMU mps2-an386): on-target tests, size budget, and frames
# from the emulated board verified end to end. Ends with a plain "N passed, N failed" line.
scripts/firmware-test.sh
