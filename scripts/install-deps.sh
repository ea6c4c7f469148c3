#!/bin/sh
# Install the Debian packages a tinykube node needs, only those missing.
#
#   sudo ./scripts/install-deps.sh      (what `sudo make run` calls)
#
# Idempotent: when everything is installed it changes nothing, needs no
# network and exits 0. `apt-get update` runs once, and only when something
# has to be installed. Set TINYKUBE_DEPS to override the package list.
set -eu

PACKAGES=${TINYKUBE_DEPS:-"containerd runc containernetworking-plugins nftables iproute2"}

say() { printf 'install-deps: %s\n' "$*" >&2; }

# dpkg-query prints "install ok installed" only for a fully installed
# package; anything else (absent, removed but configured, half-installed)
# counts as missing.
installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	say "this script supports Debian and its derivatives (dpkg and apt-get); install by hand: $PACKAGES"
	exit 1
fi

missing=""
for p in $PACKAGES; do
	installed "$p" || missing="$missing $p"
done
missing=${missing# }

if [ -z "$missing" ]; then
	say "all present: $PACKAGES"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	say "missing packages: $missing"
	say "installing them needs root: run 'sudo make run' or 'sudo $0'"
	exit 1
fi

say "installing: $missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086 # the list is meant to split into words
apt-get install -y --no-install-recommends $missing

# Check what apt-get reported: a package it could not configure must fail
# here, not later as a confusing runtime error.
for p in $missing; do
	if ! installed "$p"; then
		say "$p is still not installed"
		exit 1
	fi
done
say "done"
