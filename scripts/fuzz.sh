#!/usr/bin/env bash
# Runs every cargo-fuzz target in protocol/fuzz for a bounded time and fails if any of them finds a crash.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 20; CI runs `scripts/fuzz.sh 6`, about 3 minutes in all)
#   FUZZ_CRATES="protocol/fuzz hub-daemon/fuzz" scripts/fuzz.sh 600    (the long run, with the config parser)
#
# Needs the nightly toolchain (installed here, minimal profile, if missing) and cargo-fuzz (installed here with
# `cargo install cargo-fuzz --locked` if missing: ~35 s). Nothing is cached between CI runs.
#
# Seeds come from <crate>/corpus/<target>/ (committed, read-only here); inputs libFuzzer finds are kept in
# <crate>/target/corpus-work/<target>/ (ignored by git) so later runs start from them. A crash leaves its input
# in <crate>/artifacts/<target>/; reproduce it with `cargo +nightly fuzz run <target> <that file>`.
# Prints one plain summary line, "fuzz: N passed, N failed", and exits non-zero if anything failed.
set -uo pipefail

secs="${1:-20}"
case "$secs" in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS_PER_TARGET]" >&2
	exit 2
	;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! rustup toolchain list | grep -q '^nightly'; then
	echo "installing the nightly toolchain (cargo-fuzz needs it)" >&2
	rustup toolchain install nightly --profile minimal || exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
	echo "installing cargo-fuzz" >&2
	cargo install cargo-fuzz --locked || exit 1
fi

total_passed=0
total_failed=0
for crate in ${FUZZ_CRATES:-protocol/fuzz}; do
cd "$root/$crate" || exit 1

mapfile -t targets < <(cargo +nightly fuzz list)
if [ "${#targets[@]}" -eq 0 ]; then
	echo "no fuzz targets found in $crate" >&2
	echo "fuzz: 0 passed, 1 failed"
	exit 1
fi

logs="target/fuzz-logs"
mkdir -p "$logs"

# Build every target once up front; a build failure fails them all.
if ! cargo +nightly fuzz build >"$logs/build.log" 2>&1; then
	tail -n 40 "$logs/build.log" >&2
	echo "fuzz: 0 passed, ${#targets[@]} failed ($crate does not build)"
	exit 1
fi

passed=0
failed=0
failed_names=()
for t in "${targets[@]}"; do
	work="target/corpus-work/$t"
	mkdir -p "$work" "corpus/$t"
	log="$logs/$t.log"
	# -timeout: an input that takes more than 10 s is a hang, and a hang is a failure.
	if cargo +nightly fuzz run "$t" "$work" "corpus/$t" -- \
		-max_total_time="$secs" -rss_limit_mb=1024 -timeout=10 >"$log" 2>&1; then
		runs="$(grep -Eo 'Done [0-9]+ runs' "$log" | tail -n 1)"
		cov="$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1)"
		echo "ok      $t: ${runs:-done} (${cov:-cov: ?})"
		passed=$((passed + 1))
	else
		echo "FAILED  $t (log: $crate/$log)"
		grep -E 'panicked|ERROR:|SUMMARY|Test unit written' "$log" | head -n 8 | sed 's/^/        /'
		failed=$((failed + 1))
		failed_names+=("$t")
	fi
done

if [ "$failed" -gt 0 ]; then
	echo "failed targets in $crate: ${failed_names[*]}" >&2
fi
total_passed=$((total_passed + passed))
total_failed=$((total_failed + failed))
done

echo "fuzz: $total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
