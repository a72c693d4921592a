#!/usr/bin/env bash
# Builds the broker image (default tag rocketkafka/broker:local) on a
# machine with no reachable registry: the build stage's base image is
# imported from this machine's Go toolchain, and the build context is a
# copy of the source with its modules vendored (the checkout is untouched).
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-rocketkafka/broker:local}
goroot=$(go env GOROOT)
if ! docker image inspect rocketkafka/go-toolchain:local >/dev/null 2>&1; then
	# The Go toolchain is statically linked; the CA bundle lets `go` verify
	# TLS should it need to.
	tar -C / -cf - "${goroot#/}" etc/ssl/certs/ca-certificates.crt |
		docker import \
			--change "ENV PATH=$goroot/bin:/usr/bin:/bin" \
			--change 'ENV GOTOOLCHAIN=local' --change 'ENV HOME=/root' \
			--change 'ENV GOCACHE=/root/.cache/go-build' --change 'ENV GOPATH=/root/go' \
			- rocketkafka/go-toolchain:local >/dev/null
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
tar --exclude=./.git --exclude=./data --exclude=./vendor -cf - . | tar -C "$ctx" -xf -
(cd "$ctx" && go mod vendor && docker build -q -t "$tag" . >/dev/null)
echo "$tag"
