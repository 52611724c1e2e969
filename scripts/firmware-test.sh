#!/usr/bin/env bash
# Firmware tests under QEMU (mps2-an386, Cortex-M4F): builds the board crate, runs its on-target tests, checks flash
# and RAM against the budget, and runs one end-to-end check (TMP105 temperature set over QMP, PPG / acceleration /
# load-cell samples fed over UART0, frames read back from UART0 and verified with the protocol crate), then builds
# the nRF52840 BLE board (release) and reports its sizes. The HIL scenarios run in `cargo test` (tests/tests/hil.rs).
# Ends with a plain "N passed, N failed" line; exits non-zero on any failure.
#
# Installs nothing silently: scripts/install-test-deps.sh (if present) names anything it installs (qemu-system-arm,
# the thumbv7em-none-eabihf target). The host library's own tests run with `cargo test --workspace`.
#
#   scripts/firmware-test.sh
#   HEARTH_BOARD_TARGET_DIR=/tmp/board scripts/firmware-test.sh    # where the board build goes
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

BOARD_DIR="$root/firmware/boards/qemu-mps2-an386"
BOARD_TARGET_DIR="${HEARTH_BOARD_TARGET_DIR:-$root/target/qemu-mps2-an386}"
ELF="$BOARD_TARGET_DIR/thumbv7em-none-eabihf/debug/hearth-board"
FLASH_BUDGET=$((64 * 1024))
RAM_BUDGET=$((16 * 1024))
QEMU_TIMEOUT=60

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "firmware: ok   $*"; }
fail() { failed=$((failed + 1)); echo "firmware: FAIL $*"; }
finish() {
    echo "$passed passed, $failed failed"
    if ((failed > 0)); then exit 1; fi
    exit 0
}

if [[ -x scripts/install-test-deps.sh ]]; then
    scripts/install-test-deps.sh
fi
command -v qemu-system-arm >/dev/null || { fail "qemu-system-arm not installed"; finish; }

# --- Build ------------------------------------------------------------------------------------------------------
echo "firmware: building the board (target dir $BOARD_TARGET_DIR)"
if ! (cd "$BOARD_DIR" && CARGO_TARGET_DIR="$BOARD_TARGET_DIR" cargo build --locked --quiet \
        && CARGO_TARGET_DIR="$BOARD_TARGET_DIR" cargo test --locked --quiet --no-run); then
    fail "board build"
    finish
fi
pass "board build"

# --- On-target tests --------------------------------------------------------------------------------------------
# cargo's runner (.cargo/config.toml) starts QEMU with semihosting; the build is done, so the timeout is QEMU's.
log="$(mktemp)"
if (cd "$BOARD_DIR" && CARGO_TARGET_DIR="$BOARD_TARGET_DIR" timeout "$QEMU_TIMEOUT" cargo test --locked --quiet) \
        >"$log" 2>&1; then
    status=0
else
    status=$?
fi
sed 's/^/  /' "$log"
summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1 || true)"
if [[ -n "$summary" ]]; then
    n_pass="${summary%% passed*}"
    n_fail="$(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$summary")"
    passed=$((passed + n_pass))
    failed=$((failed + n_fail))
    echo "firmware: on-target tests: $summary"
fi
if [[ $status -ne 0 || -z "$summary" ]]; then
    fail "on-target test run (exit $status${summary:+, $summary})"
fi
stack="$(sed -nE 's/^stack high-water: ([0-9]+) bytes$/\1/p' "$log" | tail -1)"
rm -f "$log"

# --- Sizes ------------------------------------------------------------------------------------------------------
size_tool=""
for t in "$(rustc --print sysroot)"/lib/rustlib/*/bin/llvm-size llvm-size size; do
    if command -v "$t" >/dev/null 2>&1; then size_tool="$t"; break; fi
done
if [[ -z "$size_tool" ]]; then
    fail "no llvm-size or size to measure the firmware"
else
    sections="$("$size_tool" -A "$ELF")"
    sec() { awk -v s="$1" '$1 == s { print $2 }' <<<"$sections" | head -1; }
    vt=$(sec .vector_table); text=$(sec .text); ro=$(sec .rodata); data=$(sec .data); bss=$(sec .bss)
    uninit=$(sec .uninit)
    # The retained block (frame queue + sequence bound, kept across a reset) is reserved outside the linked
    # sections by memory.x: counted whole.
    retained=4096
    flash=$(( ${vt:-0} + ${text:-0} + ${ro:-0} + ${data:-0} ))
    ram_static=$(( ${data:-0} + ${bss:-0} + ${uninit:-0} + retained ))
    ram=$(( ram_static + ${stack:-0} ))
    echo "firmware: size of hearth-board (dev profile, opt-level s):"
    echo "firmware:   flash $flash bytes ($(( (flash + 1023) / 1024 )) KiB; .text ${text:-0}, .rodata ${ro:-0}, vectors ${vt:-0}, .data ${data:-0}) — budget $FLASH_BUDGET"
    echo "firmware:   RAM   $ram bytes: static $ram_static (.data ${data:-0}, .bss ${bss:-0}, .uninit ${uninit:-0}, retained $retained) + stack high-water ${stack:-unknown} (on-target tests) — budget $RAM_BUDGET"
    if (( flash <= FLASH_BUDGET )); then pass "flash within budget"; else fail "flash $flash > $FLASH_BUDGET"; fi
    if [[ -n "$stack" ]] && (( ram <= RAM_BUDGET )); then pass "RAM within budget"; else fail "RAM $ram > $RAM_BUDGET (or stack unmeasured)"; fi
fi

# --- End to end ---------------------------------------------------------------------------------------------------
work="$(mktemp -d)"
qemu_pid=""
cat_pid=""
cleanup() {
    [[ -n "$cat_pid" ]] && kill "$cat_pid" 2>/dev/null || true
    [[ -n "$qemu_pid" ]] && kill "$qemu_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

e2e() {
    export HEARTH_E2E_DIR="$work"
    cargo test --locked --quiet -p hearth-firmware --test qemu_e2e -- --ignored --exact e2e_write_input \
        >/dev/null || { fail "e2e: writing the input script"; return; }
    mkfifo "$work/ser.in" "$work/ser.out" "$work/qmp.in" "$work/qmp.out"
    timeout "$QEMU_TIMEOUT" qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -display none -monitor none \
        -semihosting-config enable=on,target=native \
        -serial "pipe:$work/ser" \
        -chardev "pipe,id=qmp,path=$work/qmp" -mon chardev=qmp,mode=control \
        -device tmp105,bus=i2c,address=0x48,id=tmp0 \
        -kernel "$ELF" >"$work/qemu.log" 2>&1 &
    qemu_pid=$!
    cat "$work/ser.out" >"$work/serial.bin" &
    cat_pid=$!

    local i
    for i in $(seq 1 100); do
        grep -aq '^READY ' "$work/serial.bin" 2>/dev/null && break
        sleep 0.1
    done
    if ! grep -aq '^READY ' "$work/serial.bin"; then
        fail "e2e: no READY line from the board within 10 s"; cat "$work/qemu.log"; return
    fi
    pass "e2e: board printed $(grep -a '^READY ' "$work/serial.bin" | head -1)"

    # QMP: capabilities, set the TMP105 to 38.5 °C (milli-°C), read it back.
    exec 7>"$work/qmp.in" 8<"$work/qmp.out"
    {
        echo '{"execute":"qmp_capabilities"}'
        echo '{"execute":"qom-set","arguments":{"path":"/machine/peripheral/tmp0","property":"temperature","value":38500}}'
        echo '{"execute":"qom-get","arguments":{"path":"/machine/peripheral/tmp0","property":"temperature"}}'
    } >&7
    local line got=""
    for i in 1 2 3 4 5 6; do
        IFS= read -r -t 5 line <&8 || break
        if [[ "$line" == *'"return": 38500'* ]]; then got=yes; break; fi
    done
    exec 7>&- 8<&-
    if [[ -n "$got" ]]; then pass "e2e: TMP105 set to 38.5 °C over QMP"; else fail "e2e: QMP qom-set/qom-get of the TMP105"; fi

    cat "$work/input.txt" >"$work/ser.in"
    local qstatus=0
    wait "$qemu_pid" || qstatus=$?
    qemu_pid=""
    sleep 0.2
    kill "$cat_pid" 2>/dev/null || true
    wait "$cat_pid" 2>/dev/null || true
    cat_pid=""
    if [[ $qstatus -eq 0 ]]; then pass "e2e: board exited cleanly"; else fail "e2e: QEMU exit status $qstatus (124 = timeout)"; sed 's/^/  /' "$work/qemu.log"; fi

    cargo test --locked --quiet -p hearth-firmware --test qemu_e2e -- --ignored --exact e2e_check_output \
        >/dev/null 2>&1 || true
    if [[ -f "$work/e2e-report.txt" ]]; then
        sed 's/^/  /' "$work/e2e-report.txt"
        local s
        s="$(grep -E '^e2e: [0-9]+ passed, [0-9]+ failed$' "$work/e2e-report.txt")"
        s="${s#e2e: }"
        passed=$((passed + ${s%% passed*}))
        failed=$((failed + $(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$s")))
    else
        fail "e2e: the frame checker did not run"
    fi
}
e2e

# --- nRF52840 (BLE) board: must build; sizes reported ------------------------------------------------------------
NRF_DIR="$root/firmware/boards/nrf52840"
NRF_TARGET_DIR="${HEARTH_NRF_TARGET_DIR:-$root/target/nrf52840}"
echo "firmware: building the nRF52840 board (release, target dir $NRF_TARGET_DIR)"
if (cd "$NRF_DIR" && CARGO_TARGET_DIR="$NRF_TARGET_DIR" cargo build --release --locked --quiet); then
    pass "nRF52840 board build"
    if [[ -n "$size_tool" ]]; then
        nrf_sections="$("$size_tool" -A "$NRF_TARGET_DIR/thumbv7em-none-eabihf/release/hearth-nrf52840")"
        nsec() { awk -v s="$1" '$1 == s { print $2 }' <<<"$nrf_sections" | head -1; }
        n_vt=$(nsec .vector_table); n_tx=$(nsec .text); n_ro=$(nsec .rodata); n_dt=$(nsec .data)
        n_bs=$(nsec .bss); n_un=$(nsec .uninit)
        nflash=$(( ${n_vt:-0} + ${n_tx:-0} + ${n_ro:-0} + ${n_dt:-0} ))
        nram=$(( ${n_dt:-0} + ${n_bs:-0} + ${n_un:-0} ))
        echo "firmware:   nRF52840 flash $nflash bytes ($(( (nflash + 1023) / 1024 )) KiB of 1024), static RAM $nram bytes ($(( (nram + 1023) / 1024 )) KiB of 256; .data ${n_dt:-0}, .bss ${n_bs:-0}; the stack comes on top)"
    fi
else
    fail "nRF52840 board build"
fi
finish
