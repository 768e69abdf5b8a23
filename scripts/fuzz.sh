#!/usr/bin/env bash
# Run every cargo-fuzz target of fuzz/ for a bounded time, print the executions per target (from
# libFuzzer's final stats) and fail if any target finds a crash (panic, timeout or out-of-memory).
#
#   scripts/fuzz.sh                      # every target, 60 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh jql url_template
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and libFuzzer's nightly flags, which a stable
# toolchain accepts with RUSTC_BOOTSTRAP=1 (set here). Environment:
#   FUZZ_SECONDS     time per target (default 60)
#   FUZZ_SANITIZER   none (default: the code forbids unsafe, and it runs several times faster) or address
#   FUZZ_TARGET_DIR  cargo target directory of the fuzz build (default fuzz/target)
#   FUZZ_RSS_MB      memory limit of a run in MB (default 2048)
# A crash leaves its input under fuzz/artifacts/<target>/; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none <target> fuzz/artifacts/<target>/<file>
set -euo pipefail

cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
sanitizer=${FUZZ_SANITIZER:-none}
rss=${FUZZ_RSS_MB:-2048}
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$PWD/fuzz/target}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "building ${#targets[@]} fuzz targets (sanitizer: $sanitizer)"
cargo fuzz build --sanitizer "$sanitizer" >/dev/null

logs=$(mktemp -d)
failed=()
printf '%-30s %14s %10s %8s  %s\n' target executions "exec/s" corpus result
for target in "${targets[@]}"; do
    log="$logs/$target.log"
    if cargo fuzz run --sanitizer "$sanitizer" "$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb="$rss" -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result=CRASH
        failed+=("$target")
    fi
    execs=$(awk '/^stat::number_of_executed_units:/ {print $2}' "$log" | tail -n 1)
    rate=$(awk '/^stat::average_exec_per_sec:/ {print $2}' "$log" | tail -n 1)
    corpus=$(find "fuzz/corpus/$target" -type f 2>/dev/null | wc -l)
    printf '%-30s %14s %10s %8s  %s\n' "$target" "${execs:-?}" "${rate:-?}" "$corpus" "$result"
done

if [ "${#failed[@]}" -gt 0 ]; then
    for target in "${failed[@]}"; do
        echo
        echo "=== $target: last lines of its log ($logs/$target.log) ==="
        grep -v '^#' "$logs/$target.log" | tail -n 40
    done
    echo
    echo "crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
rm -rf "$logs"
echo "no crash in ${#targets[@]} targets, ${seconds} s each"
