#!/usr/bin/env bash
# Times credwatch against tcpdump (and tshark when installed) on three generated captures and
# checks credwatch's recall against the generator's ground truth. See bench/README.md.
#
#   bench/compare.sh [SIZE] [--rounds N] [--dir DIR] [--seed N] [--binary PATH]
#
# SIZE defaults to 1GB per capture (binary units: 100MB, 1GB). Captures are generated once per
# size and seed into DIR (default target/bench-captures) and reused. --binary times that credwatch
# (e.g. the profile-guided build of contrib/build-pgo.sh) instead of the plain release build,
# which is built and timed otherwise. Installs nothing: tcpdump
# (Debian/Ubuntu package `tcpdump`) and GNU time (`/usr/bin/time`, package `time`) must be there;
# tshark is optional.
set -euo pipefail

size=1GB
rounds=5
seed=1
binary=
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=$repo/target/bench-captures
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) size=$1; shift ;;
    esac
done

filter='tcp port 110 or tcp port 143'
for tool in tcpdump /usr/bin/time; do
    if ! command -v "$tool" >/dev/null; then
        echo "compare.sh: $tool is needed (apt-get install tcpdump time)" >&2
        exit 2
    fi
done
have_tshark=$(command -v tshark >/dev/null && echo yes || echo no)

gen=$repo/target/release/credwatch-gen
if [ -n "$binary" ]; then
    credwatch=$(realpath "$binary")
    echo "building the capture generator (release)…" >&2
    (cd "$repo" && cargo build --release --quiet --bin credwatch-gen)
else
    credwatch=$repo/target/release/credwatch
    echo "building credwatch (release)…" >&2
    (cd "$repo" && cargo build --release --quiet --bins)
fi

mkdir -p "$dir"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

kinds=(mixed mail-heavy many-flows)
declare -A capture
for kind in "${kinds[@]}"; do
    capture[$kind]=$dir/$kind-$size-s$seed.pcap
    if [ ! -s "${capture[$kind]}" ]; then
        "$gen" generate --kind "$kind" --size "$size" --seed "$seed" --out "${capture[$kind]}"
    fi
done

# Runs a command with its output to $1; prints "user_ms sys_ms wall_ms peak_rss_kib". CPU time
# comes from bash's `times` (getrusage of the children, millisecond precision), peak RSS from
# GNU time, wall time from the clock.
measure() {
    local out=$1
    shift
    local start end cpu
    start=$(date +%s%N)
    cpu=$({ /usr/bin/time -f '%M' -o "$scratch/rss" "$@" >"$out" 2>"$scratch/stderr"; times; } | tail -1)
    end=$(date +%s%N)
    echo "$cpu" | awk -v wall=$(((end - start) / 1000000)) -v rss="$(tail -1 "$scratch/rss")" '
        function ms(t,  m, s) { m = t; sub(/m.*/, "", m); s = t; sub(/^[0-9]+m/, "", s); sub(/s$/, "", s); return int((m * 60 + s) * 1000 + 0.5) }
        { print ms($1), ms($2), wall, rss }'
}

# The median of the numbers on standard input, printed with FORMAT (default: a whole number).
median() {
    sort -g | awk -v format="${1:-%d}" '{ v[NR] = $1 } END { printf format, (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The median of the rounds' own ratios: column $3 of file $2 over column $3 of file $1, line by
# line (a round's two runs are back to back, so a slow minute of the machine slows both).
# Columns: 1 user ms, 2 sys ms, 3 wall ms; "cpu" adds the first two.
paired() {
    local field=$3
    paste -d' ' "$1" "$2" | awk -v field="$field" '
        function value(offset) { return field == "cpu" ? $(offset + 1) + $(offset + 2) : $(offset + 3) }
        value(0) > 0 { print value(4) / value(0) }' | median %.2f
}

# Reads FILE into the page cache, untimed, before every timed run: the captures are meant to be
# read from memory, and this machine reclaims page cache that has not been read for a few
# seconds on its own (a DAMON `pageout` scheme), so that a run could otherwise read some of its
# file from disk (seen as a few hundred KiB of block input in about one run in six).
warm() {
    cat "$1" >/dev/null
}

cpu_model=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)
echo "machine: $(nproc) CPUs, $cpu_model; $(uname -sr)"
echo "tools:   $("$credwatch" --version), $(tcpdump --version 2>&1 | head -1)$([ "$have_tshark" = yes ] && echo ", $(tshark --version | head -1)")"
echo "command: bench/compare.sh $size --rounds $rounds --seed $seed${binary:+ --binary $binary}"
echo "timing:  CPU = user+sys, median of $rounds alternating rounds; credwatch read --format json FILE >/dev/null"
echo "         vs tcpdump -nr FILE -w /dev/null '$filter'"
echo "         (ratio: of the medians; paired: median of each round's own ratio; recall scored on"
echo "         one more credwatch run, whose alerts go to a file)"
echo
printf '%-11s %9s %12s %14s %7s %7s %7s %11s %12s  %s\n' capture size tcpdump_cpu credwatch_cpu ratio paired target \
    wall_ratio credwatch_rss recall
declare -A target=([mixed]=0.8 [mail-heavy]=1.5 [many-flows]=3.0)
for kind in "${kinds[@]}"; do
    file=${capture[$kind]}
    : >"$scratch/td" && : >"$scratch/cw"
    for round in $(seq "$rounds"); do
        if [ $((round % 2)) -eq 1 ]; then order="td cw"; else order="cw td"; fi
        for tool in $order; do
            warm "$file"
            if [ "$tool" = td ]; then
                measure /dev/null tcpdump -nr "$file" -w /dev/null "$filter" >>"$scratch/td"
            else
                measure /dev/null "$credwatch" read --format json "$file" >>"$scratch/cw"
            fi
        done
    done
    td_cpu=$(awk '{ print $1 + $2 }' "$scratch/td" | median)
    cw_cpu=$(awk '{ print $1 + $2 }' "$scratch/cw" | median)
    td_wall=$(awk '{ print $3 }' "$scratch/td" | median)
    cw_wall=$(awk '{ print $3 }' "$scratch/cw" | median)
    cw_rss=$(awk '{ print $4 }' "$scratch/cw" | sort -n | tail -1)
    # The recall is scored on a run of its own: the timed runs write to /dev/null, as tcpdump does
    # (writing the alerts into the page cache cost 5-10 % more CPU than the analysis itself).
    "$credwatch" read --format json "$file" >"$scratch/alerts"
    recall=$("$gen" score --truth "$dir/truth.jsonl" --file "$(basename "$file")" "$scratch/alerts" | tail -1 | sed 's/^[^:]*: //')
    printf '%-11s %8sM %10sms %12sms %6.2fx %6sx %6sx %10.2fx %9sMiB  %s\n' "$kind" $(($(stat -c %s "$file") >> 20)) \
        "$td_cpu" "$cw_cpu" "$(echo "$cw_cpu $td_cpu" | awk '{ print $1 / $2 }')" \
        "$(paired "$scratch/td" "$scratch/cw" cpu)" "≤${target[$kind]}" \
        "$(echo "$cw_wall $td_wall" | awk '{ print $1 / $2 }')" $((cw_rss >> 10)) "$recall"
    if [ "$have_tshark" = yes ]; then
        warm "$file"
        ts=$(measure /dev/null tshark -n -r "$file" -Y 'pop or imap' | awk '{ print $1 + $2 }')
        printf '%-11s %9s %12s  tshark -Y "pop or imap": %sms CPU (one round), %.2fx credwatch\n' "" "" "" "$ts" \
            "$(echo "$ts $cw_cpu" | awk '{ print $1 / $2 }')"
    fi
done

echo
mail=${capture[mail-heavy]}
if "$credwatch" read --help 2>/dev/null | grep -q -- '--threads'; then
    one=("$credwatch" read --threads 1 --format json "$mail")
    : >"$scratch/t1" && : >"$scratch/t2" && : >"$scratch/tpair"
    for round in $(seq "$rounds"); do
        if [ $((round % 2)) -eq 1 ]; then order="1 2 pair"; else order="pair 2 1"; fi
        for threads in $order; do
            warm "$mail"
            if [ "$threads" = pair ]; then
                # Two one-thread runs at once: what the machine's two cores give when both work.
                measure /dev/null bash -c '"$@" >/dev/null & "$@" >/dev/null; wait' pair "${one[@]}" >>"$scratch/tpair"
            else
                measure /dev/null "$credwatch" read --threads "$threads" --format json "$mail" >>"$scratch/t$threads"
            fi
        done
    done
    t1=$(awk '{ print $3 }' "$scratch/t1" | median)
    t2=$(awk '{ print $3 }' "$scratch/t2" | median)
    printf 'threads    mail-heavy wall time: --threads 1 %sms, --threads 2 %sms, ratio %.2fx, paired %sx (target ≤0.6x)\n' \
        "$t1" "$t2" "$(echo "$t2 $t1" | awk '{ print $1 / $2 }')" "$(paired "$scratch/t1" "$scratch/t2" wall)"
    pair=$(paired "$scratch/t1" "$scratch/tpair" wall)
    printf '           two --threads 1 runs at once take %sx the wall time of one (paired): the cores slow each\n' "$pair"
    printf '           other down, and a perfect split over two threads would take at least %.2fx\n' \
        "$(echo "$pair" | awk '{ print $1 / 2 }')"
else
    echo "threads    skipped: this credwatch has no --threads option (the threaded pipeline has not landed)"
fi
