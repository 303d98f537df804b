#!/bin/sh
# Runs the screen share relay benchmark of issue 7 (gateway/rtc/bench_test.go):
# streams relayed and recorded per core, packets per second per core and the
# latency the relay adds over direct pion-to-pion, measured in the same run.
# The relay runs in a process of its own; profile it with -relaycpuprofile,
# -relaymemprofile and -relaytrace (-cpuprofile would profile the synthetic
# peers). Extra arguments go to go test, for example:
#   bench/rtc.sh -relaycpuprofile /tmp/relay.cpu
set -eu
cd "$(dirname "$0")/.."
go test -run '^$' -bench Relay -benchtime 1x ./gateway/rtc/ "$@"
