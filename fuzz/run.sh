#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 45) from seed corpora written by the test suite.
# Usage: fuzz/run.sh [SECONDS]   (from anywhere; CI calls it from the repository root)
#
# Needs cargo-fuzz (installed here if missing) and a nightly toolchain; without one, the stable
# toolchain is used with RUSTC_BOOTSTRAP=1 (cargo-fuzz only needs the -Z flags nightly allows).
# Exits non-zero on the first crash, leaving the input in fuzz/artifacts/<target>/.
set -euo pipefail

seconds="${1:-45}"
fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$fuzz_dir")"
targets=(capture_file decode_frames reassembly session_pop3 session_imap session_smtp session_managesieve session_any_port)

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
if cargo +nightly --version >/dev/null 2>&1; then
    toolchain=(+nightly)
else
    echo "fuzz/run.sh: no nightly toolchain, using stable with RUSTC_BOOTSTRAP=1" >&2
    toolchain=()
    export RUSTC_BOOTSTRAP=1
fi

# Seeds: the test suite writes them (and copies the shared corpus captures when present).
(cd "$repo" && CREDWATCH_FUZZ_SEEDS="$fuzz_dir/corpus" cargo test --quiet --test regressions seed_corpora)

cd "$fuzz_dir"
# Release with debug assertions: overflow checks on, as arithmetic overflow is a bug here too.
build=(-O --debug-assertions --sanitizer none)
cargo "${toolchain[@]}" fuzz build "${build[@]}"
passed=0
for target in "${targets[@]}"; do
    echo "fuzz/run.sh: $target for ${seconds}s" >&2
    cargo "${toolchain[@]}" fuzz run "${build[@]}" "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=512 -timeout=10 -print_final_stats=1
    passed=$((passed + 1))
done
echo "fuzz: ${passed} passed, 0 failed"
