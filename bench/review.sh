#!/bin/sh
# Runs the review player benchmark of issue 8 three times and prints its
# figures (see review/bench_test.go): time to the first screen and to
# random seeks of a 1-hour, 100 MB shell recording in headless Chromium,
# against decrypting the whole recording in the same run. Needs chromium.
# Extra arguments go to go test.
set -eu
cd "$(dirname "$0")/.."
go test -run '^$' -bench Player -benchtime 1x -count 3 ./review/ "$@"
