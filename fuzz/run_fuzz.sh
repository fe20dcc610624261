#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time under CTest (label "fuzz").
#   run_fuzz.sh FUZZER SOURCE_CORPUS WORK_DIR SECONDS [LIBFUZZER_ARGS...]
# New inputs go to WORK_DIR/corpus (under the build tree), never into the committed corpus
# SOURCE_CORPUS, which is read as seeds. A crash, leak, timeout or sanitizer report fails
# the test; the reproducer is left as WORK_DIR/crash-* and named in the output (copy it
# into the committed corpus once fixed, so every build replays it).
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 seconds=$4
shift 4
rm -rf "$work"
mkdir -p "$work/corpus"
# -timeout: one input may take at most 10 s; -rss_limit_mb: bounded memory per input;
# -max_len: inputs up to 64 KiB (the parsers' interesting structure is in the first bytes).
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$work/" "$@" "$work/corpus" "$seeds"
