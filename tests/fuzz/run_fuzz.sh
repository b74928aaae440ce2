#!/bin/sh
# Runs a libFuzzer binary for a bounded time: run_fuzz.sh FUZZER SEED_DIR WORK_DIR SECONDS.
# New inputs go to WORK_DIR (the seed corpus in the repo is never written);
# a crash leaves its input in WORK_DIR/crash-* and fails the test.
set -eu
fuzzer=$(realpath "$1") seeds=$(realpath "$2") work=$3 secs=$4
mkdir -p "$work"
cd "$work"
exec "$fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1 "$work" "$seeds"
