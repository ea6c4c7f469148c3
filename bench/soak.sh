#!/usr/bin/env bash
# The soak benchmark of issue 13: a lab node's server under a mixed load
# from 20 clients and 200 watches, pods churning, restarted every fifth of
# the run (once with SIGKILL). Prints what was written and found, the
# events the watchers checked, RSS and goroutines. Needs root (a lab
# network namespace and containerd). Usage: bench/soak.sh [DURATION], 10m
# by default.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r)"
TINYKUBE_SOAK="${1:-10m}" go test -count=1 -timeout 30m -run '^TestSoak$' -v ./cmd/tinykube 2>&1 |
	grep -E '^(=== RUN|--- |PASS|FAIL|ok|\s+soak_lab_test.go)'
