#!/bin/sh
# Runs the WireGuard hub benchmarks of issue 5 and prints their figures:
# single-stream TCP throughput through the hub and a supportgate-assist
# netstack (at its default MTU and at 1420), through wireguard-go's own
# netstack pair, and through the hub to Debian's wireguard-go on a TUN
# device in a network namespace the benchmark makes (needs root,
# /dev/net/tun, wireguard-go, wg, ip; that part is skipped otherwise), each
# against plain loopback TCP in the same run; CPU per MiB through hub and
# helper each way (BenchmarkTunnel, SG_BENCH_MB); and heap per idle
# enrolled peer. Extra arguments go to go test, for example:
# bench/wireguard.sh -count 5
set -eu
cd "$(dirname "$0")/.."
go test -run '^$' -bench . -benchtime 1x ./gateway/wghub/ "$@"
