#!/bin/sh
# Runs the WireGuard hub benchmarks of issue 5 and prints their figures:
# single-stream TCP throughput through the hub and a supportgate-assist
# netstack, and through the hub to Debian's wireguard-go on a TUN device in
# a network namespace the benchmark makes (needs root, /dev/net/tun,
# wireguard-go, wg, ip; that part is skipped otherwise), each against plain
# loopback TCP in the same run; and heap per idle enrolled peer. Extra
# arguments go to go test, for example: bench/wireguard.sh -count 5
set -eu
cd "$(dirname "$0")/.."
go test -run '^$' -bench . -benchtime 1x ./gateway/wghub/ "$@"
