#!/bin/sh
# Installs what building and testing need on Debian/Ubuntu, if it is missing:
# libzmq, libcrypto (libssl-dev) and pkg-config to build; as root, also iproute2, iptables, tcpdump and python3 for the
# tests that build network-namespace hosts (deploy/netns; they are skipped when not root), and
# tmux for the test that drives the live view (--progress full) in a real terminal.
# prometheus (with promtool) for the metrics test, which scrapes a real run.
set -eu

packages=""
pkg-config --exists libzmq 2>/dev/null || packages="libzmq3-dev pkg-config"
pkg-config --exists libcrypto 2>/dev/null || packages="$packages libssl-dev"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    command -v ip >/dev/null 2>&1 || packages="$packages iproute2"
    command -v iptables >/dev/null 2>&1 || packages="$packages iptables"
    command -v tcpdump >/dev/null 2>&1 || packages="$packages tcpdump"
    command -v python3 >/dev/null 2>&1 || packages="$packages python3"
    command -v tmux >/dev/null 2>&1 || packages="$packages tmux"
    command -v prometheus >/dev/null 2>&1 || packages="$packages prometheus"
fi
[ -n "$packages" ] || exit 0

echo "setup: installing$packages" >&2
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "setup: missing$packages and this user cannot install them; as root: apt-get install -y$packages" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086 # a list of package names
$SUDO apt-get install -y -qq --no-install-recommends $packages >/dev/null
pkg-config --exists libzmq
pkg-config --exists libcrypto
