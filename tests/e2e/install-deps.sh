#!/usr/bin/env bash
# Installs what the test suite needs beyond Rust, with apt, when it is missing: the real-server beds
# (tests/e2e/run.sh, tests/e2e/live.sh), libpcap for the `live` feature, Chromium for the HTML
# report test, systemd's `systemd-analyze` and strace for the checks of the unit in contrib/, and
# the llvm-profdata of rustc's LLVM version for contrib/build-pgo.sh (when the distribution has it).
#
# Noninteractive: postfix is preseeded to "No configuration" (the bed writes its own config into a
# temp dir), and while apt runs, services are kept from starting so that no system-wide Dovecot or
# Postfix ends up listening on the host's own addresses. `apt-get update` runs only when a first
# install attempt fails (stale or empty package lists).
set -euo pipefail

packages=(dovecot-imapd dovecot-pop3d dovecot-managesieved postfix tcpdump curl fetchmail python3 openssl iproute2 libpcap-dev chromium systemd strace)
llvm_major=$(rustc -vV 2>/dev/null | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
llvm_package=${llvm_major:+llvm-$llvm_major}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# The LLVM package, when the package lists know it and it is not installed yet.
llvm_missing() {
    [[ -n $llvm_package ]] && apt-cache show "$llvm_package" >/dev/null 2>&1 && ! installed "$llvm_package"
}

if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps.sh: must run as root (apt-get install)" >&2
    exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
    if ! installed "$pkg"; then
        missing+=("$pkg")
    fi
done
if llvm_missing; then
    missing+=("$llvm_package")
fi
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps.sh: all packages present"
    exit 0
fi
echo "install-deps.sh: installing ${missing[*]}"

export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string e2e.invalid" | debconf-set-selections

# Keep package scripts from starting daemons on the host; only our own policy file is removed again.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
fi
remove_policy() {
    if [[ $created_policy -eq 1 ]]; then
        rm -f "$policy"
    fi
}
trap remove_policy EXIT

apt_install() {
    apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold "${missing[@]}"
}
if ! apt_install; then
    echo "install-deps.sh: install failed, running apt-get update and retrying"
    apt-get update -q
    # Fresh package lists may know the LLVM package the stale ones did not.
    if llvm_missing && [[ ! " ${missing[*]} " == *" $llvm_package "* ]]; then
        missing+=("$llvm_package")
    fi
    apt_install
fi
echo "install-deps.sh: done"
