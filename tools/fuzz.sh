#!/bin/sh
# Runs each libFuzzer harness for FUZZ_SECONDS: the committed seeds (fuzz/corpus/NAME, every past
# finding among them) first, new inputs into fuzz/out/. Usage: tools/fuzz.sh BUILD_DIR SECS NAME...
# -detect_leaks=0: the harnesses keep one Lua state whose garbage outlives each input, so a
# per-input leak check would scan the heap on every run; LeakSanitizer still checks at exit.
set -e
build=$1; seconds=$2; shift 2
for t in "$@"; do
  mkdir -p "fuzz/out/corpus/$t" "fuzz/out/crash/$t" "fuzz/corpus/$t"
  echo "fuzz: $t for $seconds s"
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$build/fuzz_$t" -max_total_time="$seconds" \
    -max_len=4096 -timeout=10 -rss_limit_mb=2048 -detect_leaks=0 -print_final_stats=1 \
    -artifact_prefix="fuzz/out/crash/$t/" "fuzz/out/corpus/$t" "fuzz/corpus/$t" 2>"fuzz/out/$t.log" ||
  { tail -60 "fuzz/out/$t.log"; echo "fuzz: $t FAILED (input in fuzz/out/crash/$t/)"; exit 1; }
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|cov:' "fuzz/out/$t.log" | tail -3
done
