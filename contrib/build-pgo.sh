#!/usr/bin/env bash
# Builds credwatch with profile-guided optimisation (PGO): an instrumented build reads generated
# training captures (the three kinds of bench/compare.sh, another seed) and the bundled
# fixtures, and the release build is then laid out and inlined after what that run executed.
# Same behaviour, same output; 11-16 % less CPU per capture (bench/README.md, "Profile-guided
# build"). For deployments at line rate; the plain `cargo build --release` needs Rust only.
#
#   contrib/build-pgo.sh [--out PATH] [--training-size SIZE] [-- CARGO_BUILD_ARGS...]
#
# --out                where the binary goes (default target/pgo/credwatch)
# --training-size      size of each generated training capture (default 64MB)
# CARGO_BUILD_ARGS     passed to both builds, e.g. `-- --features live`
#
# Needs llvm-profdata of the LLVM version rustc was built with (`rustc -vV` shows it):
# `rustup component add llvm-tools`, or Debian/Ubuntu's `llvm-N` package for that major version N.
# LLVM_PROFDATA=PATH picks one. Work files go to target/pgo/. Exit status 0 built, 2 bad
# arguments, 3 no suitable llvm-profdata, other: a build or training run failed.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/target/pgo/credwatch
training_size=64MB
cargo_args=()
while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        --training-size) training_size=$2; shift 2 ;;
        --) shift; cargo_args=("$@"); break ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-pgo.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

log() { printf '[build-pgo] %s\n' "$*" >&2; }

host=$(rustc -vV | sed -n 's/^host: //p')
llvm_major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')

# The first llvm-profdata of rustc's LLVM major version: profiles of another version may not
# be readable by rustc (older tools) or may be silently ignored.
find_profdata() {
    local candidate
    for candidate in "${LLVM_PROFDATA:-}" \
        "$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata" \
        "llvm-profdata-$llvm_major" "/usr/lib/llvm-$llvm_major/bin/llvm-profdata" llvm-profdata; do
        [ -n "$candidate" ] && command -v "$candidate" >/dev/null || continue
        if "$candidate" --version 2>/dev/null | grep -Eq "LLVM version $llvm_major\."; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

if ! profdata=$(find_profdata); then
    echo "build-pgo.sh: no llvm-profdata of LLVM $llvm_major (the version rustc uses) found:" \
        "run \`rustup component add llvm-tools\`, install llvm-$llvm_major, or set LLVM_PROFDATA" >&2
    exit 3
fi
log "llvm-profdata: $profdata"

work=$repo/target/pgo
rm -rf "$work/profiles" "$work/discarded" "$work/training"
mkdir -p "$work/profiles" "$work/discarded" "$work/training"
# RUSTFLAGS (split on spaces, as cargo does) plus one flag, as CARGO_ENCODED_RUSTFLAGS: the
# flag's path may hold spaces. They apply to the target only, not build scripts: --target is given.
rustflags_with() {
    local flag joined="" user_flags=()
    read -ra user_flags <<<"${RUSTFLAGS:-}"
    for flag in "${user_flags[@]}"; do
        joined+=$flag$'\x1f'
    done
    printf '%s' "$joined$1"
}

log "instrumented build"
CARGO_ENCODED_RUSTFLAGS=$(rustflags_with "-Cprofile-generate=$work/profiles") cargo build --release --locked --quiet \
    --target "$host" --target-dir "$work/instrumented" --bins "${cargo_args[@]}"
instrumented=$work/instrumented/$host/release

log "training captures ($training_size each)"
for kind in mixed mail-heavy many-flows; do
    # The generator's own profile is not credwatch's: it goes elsewhere.
    LLVM_PROFILE_FILE="$work/discarded/%p.profraw" "$instrumented/credwatch-gen" generate --kind "$kind" \
        --size "$training_size" --seed 20 --out "$work/training/$kind.pcap" >/dev/null
done

log "training runs"
cw=$instrumented/credwatch
export LLVM_PROFILE_FILE="$work/profiles/%p-%m.profraw"
for capture in "$work"/training/*.pcap; do
    for threads in 1 2; do
        "$cw" read --quiet --threads "$threads" --format json "$capture" >/dev/null
    done
    "$cw" read --quiet --format ecs --dedup-window 10m "$capture" >/dev/null
done
"$cw" read --quiet --format text "$work/training/mail-heavy.pcap" >/dev/null
"$cw" posture --quiet "$work/training/mail-heavy.pcap" >/dev/null
# The bundled captures: real servers and clients, and the broken files' error paths. Their exit
# status says what they held, not whether training worked.
"$cw" read --quiet --format json "$repo/fixtures" >/dev/null 2>&1 || true
unset LLVM_PROFILE_FILE

"$profdata" merge -o "$work/credwatch.profdata" "$work/profiles"

log "optimised build"
CARGO_ENCODED_RUSTFLAGS=$(rustflags_with "-Cprofile-use=$work/credwatch.profdata") cargo build --release --locked --quiet \
    --target "$host" --target-dir "$work/optimized" --bin credwatch "${cargo_args[@]}"
mkdir -p "$(dirname "$out")"
cp "$work/optimized/$host/release/credwatch" "$out"
log "built $out"
