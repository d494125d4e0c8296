#!/usr/bin/env bash
# Sign-ins/s and refreshes/s through nginx: one bbolt broker, then three
# broker replicas on a three-member etcd cluster (Debian's etcd-server),
# all on this machine. Needs nginx and etcd (scripts/test installs both).
# Usage: bench/ha.sh [DURATION]   (per measurement, default 10s)
set -euo pipefail
cd "$(dirname "$0")/.."
GHBROKER_BENCH=1 GHBROKER_BENCH_DURATION="${1:-10s}" \
  go test -tags e2e -count=1 -run 'TestHABench' -v ./e2e/ | grep -E '^BENCH|FAIL|^ok'
