#!/bin/sh
# Installs what building needs on Debian/Ubuntu (libzmq and pkg-config) if it is missing.
set -eu
if pkg-config --exists libzmq 2>/dev/null; then
    exit 0
fi
echo "setup: installing libzmq3-dev and pkg-config" >&2
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "setup: libzmq3-dev is missing and this user cannot install it; run as root: apt-get install -y libzmq3-dev pkg-config" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq libzmq3-dev pkg-config >/dev/null
pkg-config --exists libzmq
