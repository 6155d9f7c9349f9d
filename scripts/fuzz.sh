#!/usr/bin/env bash
# Fuzzes the .pth reader (crates/safe-pth) and the image path (decode + preparation) with cargo-fuzz
# (libFuzzer), SECONDS each (default 600), then merges what added coverage into fuzz/corpus/, which
# tests/it/fuzz_corpus.rs replays with fuzz/regressions/.
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]      TARGET: pth, image (default: both, in that order)
#
# Each run starts from the corpus and the regressions, with the target's dictionary (fuzz/TARGET.dict), inputs
# of up to 64 KiB, and limits that turn unbounded memory into a failure (one allocation or a resident set over
# the target's limit, below). A crash, an out-of-memory or a timeout stops the run and leaves its input in
# fuzz/artifacts/TARGET/ (copy it to fuzz/regressions/TARGET/ once fixed); the script then exits 1. For each
# target it prints a summary: executions, seconds, peak RSS, failures, corpus size before and after the merge.
# The log of the last run is fuzz/runs/TARGET.log.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(pth image)
# The fuzz crate links the main crate, hence libtorch and OpenCV.
bash scripts/setup.sh --main
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo-fuzz passes nightly flags; the stable toolchain accepts them with this switch (and ships libFuzzer's
# sanitizer runtimes).
export RUSTC_BOOTSTRAP=1
# The fuzz binaries are not linked with classify-image's rpath.
export LD_LIBRARY_PATH="$PWD/.libtorch/lib"
cd fuzz
# AddressSanitizer's allocator is what lets libFuzzer see each allocation (-malloc_limit_mb). Both targets use
# it, so one build serves both (OpenCV and libtorch are not instrumented, but run under it).
sanitizer=address

count() { find "$1" -maxdepth 1 -type f | wc -l; }
# Failures of this run: the inputs libFuzzer wrote since it started, by kind (crash, oom, timeout, leak).
new_failures() { find "artifacts/$target" -maxdepth 1 -type f -name "${1:-*}" -newer "runs/$target.start" | wc -l; }
# The last value libFuzzer printed for a final statistic (-print_final_stats=1).
stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }

failed=0
for target in "${targets[@]}"; do
  case $target in
    pth | image) ;;
    *) echo "unknown target $target (pth or image)" >&2; exit 2 ;;
  esac
  # Memory limits per target. A .pth of 64 KiB has no business with more than a few MB. An image of 64 KiB
  # can legitimately declare up to the 100 Mpixel limit (a JPEG of uniform blocks, a PNG of zeros): decoding it
  # and torchvision's float preparation take over a GB (1.2 GB for the float copy alone), more under ASan.
  case $target in
    pth) limits=(-rss_limit_mb=1024 -malloc_limit_mb=512) ;;
    image) limits=(-rss_limit_mb=3072 -malloc_limit_mb=2048) ;;
  esac
  rm -rf "runs/$target"
  mkdir -p "runs/$target" "corpus/$target" "regressions/$target" "artifacts/$target"
  log="runs/$target.log"
  before=$(count "corpus/$target")
  touch "runs/$target.start"
  cargo fuzz build -s "$sanitizer" -O "$target"
  echo "== $target: fuzzing for ${seconds}s, $before corpus inputs, $(count "regressions/$target") regressions"
  start=$(date +%s)
  status=0
  cargo fuzz run -s "$sanitizer" -O "$target" "runs/$target" "corpus/$target" "regressions/$target" -- \
    -dict="$target.dict" -max_len=65536 "${limits[@]}" -timeout=10 \
    -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1 || status=$?
  elapsed=$(($(date +%s) - start))
  grep -v -E "^(imdecode_|Corrupt JPEG|libpng|Warning: unknown JFIF|\[libjpeg)" "$log" | grep -E "^(INFO: Loaded|INFO: seed|#[0-9]+[[:space:]]+(INITED|DONE))|Done [0-9]+ runs|ERROR|SUMMARY|Test unit written|out-of-memory|malloc\(|deadly signal|panicked" | tail -n 12 || true
  failures=$(new_failures)
  if [ "$status" -ne 0 ] || [ "$failures" -ne 0 ]; then
    failed=1
    echo "!! $target: libFuzzer exited $status; new inputs in fuzz/artifacts/$target/:"
    ls -t "artifacts/$target" | head -n "$((failures > 0 ? failures : 1))"
  fi
  # Keep what added coverage; the corpus directory keeps all it had.
  cargo fuzz run -s "$sanitizer" -O "$target" "corpus/$target" "runs/$target" -- -merge=1 \
    -max_len=65536 "${limits[@]}" -timeout=10 >"runs/$target.merge.log" 2>&1 ||
    { failed=1; tail -n 5 "runs/$target.merge.log"; }
  rm -rf "runs/$target"
  printf '%s\n' "-- $target summary" \
    "executions: $(stat number_of_executed_units "$log") in ${elapsed}s ($(stat average_exec_per_sec "$log")/s)" \
    "peak RSS: $(stat peak_rss_mb "$log") MB" \
    "failures: $failures (crashes: $(new_failures 'crash-*'), out-of-memory: $(new_failures 'oom-*'), timeouts: $(new_failures 'timeout-*'), leaks: $(new_failures 'leak-*'))" \
    "corpus: $before inputs before, $(count "corpus/$target") after the merge"
done
exit "$failed"
