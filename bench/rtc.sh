#!/bin/sh
# Runs the screen share relay benchmark of issue 7 (gateway/rtc/bench_test.go):
# streams relayed and recorded per core, packets per second per core and the
# latency the relay adds over direct pion-to-pion, measured in the same run.
# Extra arguments go to go test, for example: bench/rtc.sh -cpuprofile /tmp/rtc.cpu
set -eu
cd "$(dirname "$0")/.."
go test -run '^$' -bench Relay -benchtime 1x ./gateway/rtc/ "$@"
