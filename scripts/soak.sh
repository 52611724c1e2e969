#!/usr/bin/env bash
# Every reliability soak mode, one after another (docs/reliability.md). Each test prints `FIGURE` lines; all output
# goes to the terminal and to target/soak/soak-<UTC time>.log. Takes about 2 hours on the 2-core CI machine; pass
# test names to run only some: scripts/soak.sh crash flaky_links
#
#   crash         200 random SIGKILLs under load
#   crash_matrix  10 kills at each of the 9 failpoints
#   power_loss    100 power cuts that drop unsynced writes
#   flaky_links   10 minutes of seeded closes, resets and stalls on both broker links
#   outage_48h    the full 48-hour outage at 10 readings/s (1.73 M readings), 400 MB budget
#   load_soak     50 readings/s for an hour
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
# The crash matrix needs a hearthd with failpoints; `cargo test -p hearth-tests` alone does not rebuild the binary.
cargo build -p hearthd --features failpoints --locked
mkdir -p target/soak
log="target/soak/soak-$(date -u +%Y%m%dT%H%M%SZ).log"

run() {
    local test="$1"
    shift
    echo "== $test ($*)" | tee -a "$log"
    env "$@" cargo test -p hearth-tests --locked --test "$test" -- --nocapture --test-threads 1 2>&1 | tee -a "$log"
}

selected=("$@")
want() { [[ ${#selected[@]} -eq 0 ]] || [[ " ${selected[*]} " == *" $1 "* ]]; }

want crash && run crash HEARTH_CRASH_KILLS=200
want crash_matrix && run crash_matrix HEARTH_MATRIX_ROUNDS=10
want power_loss && run power_loss HEARTH_POWER_CUTS=100
want flaky_links && run flaky_links HEARTH_PROXY_SECS=600
want outage_48h && run outage_48h HEARTH_OUTAGE_HOURS=48 HEARTH_OUTAGE_BUDGET_MB=400
want load_soak && run load_soak HEARTH_LOAD_RATE=50 HEARTH_LOAD_SECS=3600

echo "== figures" | tee -a "$log"
# A FIGURE line can follow the test's name on the same line (--nocapture).
grep -ho 'FIGURE .*' "$log" | tee "$log.figures" || true
