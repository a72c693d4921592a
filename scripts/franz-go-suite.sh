#!/usr/bin/env bash
# Runs franz-go's own kgo integration tests (the franz-go version go.mod
# requires) against a freshly built broker on a free port with a fresh data
# directory. Extra arguments go to `go test` (e.g. -run, -skip, -v); with
# --no-skip first, the run is verbose and fails if any test skips.
set -euo pipefail
cd "$(dirname "$0")/.."
no_skip=false
if [ "${1:-}" = --no-skip ]; then
	no_skip=true
	shift
	set -- -v "$@"
fi
tmp=$(mktemp -d)
trap 'kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/broker" ./cmd/broker
"$tmp/broker" --listeners=PLAINTEXT://127.0.0.1:0 --log.dirs="$tmp/data" --logger.format=json \
	--group.initial.rebalance.delay.ms=0 2>"$tmp/broker.log" &
pid=$!
addr=""
for _ in $(seq 1 200); do
	addr=$(grep -o '"msg":"broker listening","addr":"[^"]*"' "$tmp/broker.log" | sed 's/.*"addr":"//; s/"$//' || true)
	[ -n "$addr" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/broker.log"; exit 1; }
	sleep 0.05
done
[ -n "$addr" ] || { echo "broker did not start"; cat "$tmp/broker.log"; exit 1; }
echo "franz-go kgo suite against the broker at $addr"
status=0
KGO_SEEDS="$addr" KGO_TEST_RF=1 go test github.com/twmb/franz-go/pkg/kgo -count=1 "$@" | tee "$tmp/test.out" || status=$?
if $no_skip && grep -- '--- SKIP' "$tmp/test.out"; then
	echo "tests skipped: every test of this run must run"
	status=1
fi
if [ "$status" -ne 0 ]; then
	echo "--- broker log (tail)"
	tail -50 "$tmp/broker.log"
fi
exit "$status"
