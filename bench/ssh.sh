#!/bin/sh
# Runs the SSH bastion benchmarks of issue 6 and prints their figures, each
# against a baseline measured in the same run (see gateway/bastion/bench_test.go):
#   BenchmarkBulk    ssh ... 'head -c N /dev/zero' through the bastion with
#                    recording on, vs OpenSSH ssh to a private OpenSSH sshd on
#                    loopback, vs x/crypto straight through the WireGuard hub
#                    (no bastion). N = SG_BENCH_BYTES (default 256 MiB).
#                    Also CPU per MiB of every process of each path.
#   BenchmarkEcho    keystroke echo round trips on a PTY: bastion vs hub alone.
#   BenchmarkShells  SG_BENCH_SHELLS concurrent PTY shells (default 500) over
#                    SG_BENCH_SESSIONS sessions (default 10); memory per shell.
# Needs ssh, sshd and ssh-keygen (Debian openssh-client/-server); as root
# it creates /run/sshd for the private sshd. Extra arguments go to go test.
set -eu
cd "$(dirname "$0")/.."
go test -run '^$' -bench 'Bulk' -benchtime 3x ./gateway/bastion/ "$@"
go test -run '^$' -bench 'Echo' -benchtime 3000x ./gateway/bastion/ "$@"
go test -run '^$' -bench 'Shells' -benchtime 1x ./gateway/bastion/ "$@"
