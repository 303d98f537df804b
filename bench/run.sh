#!/bin/sh
# Runs the issue 2 benchmarks and prints their figures. Extra arguments go
# to go test, for example: bench/run.sh -cpuprofile /tmp/cpu.out
set -eu
cd "$(dirname "$0")/.."
go test -run '^$' -bench ExpiryLateness -benchtime 1x ./session/ "$@"
go test -run '^$' -bench CreateApproveHTTP -benchtime 3000x ./gateway/ "$@"
