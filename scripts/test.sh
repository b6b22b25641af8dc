#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite. Stages, in this order:
#   unit  Release build in build/, every test through ctest
#   asan  the same tests built with AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/
#         (only the test binaries and the bnlab tool they run; no benchmarks)
#   fuzz  the libFuzzer targets of fuzz/ built with clang in build-fuzz/, each run for
#         BNLAB_FUZZ_SECONDS (default 60) from its committed seed corpus
# BNLAB_TEST_STAGES picks stages (e.g. BNLAB_TEST_STAGES=unit for a quick local run,
# "unit asan" without fuzzing); the default, and what CI runs, is all three.
set -euo pipefail
cd "$(dirname "$0")/.."

stages="${BNLAB_TEST_STAGES:-unit asan fuzz}"
if [[ -z "${stages// /}" ]]; then
  echo "test.sh: BNLAB_TEST_STAGES is empty: name at least one of unit, asan, fuzz" >&2
  exit 2
fi
for stage in $stages; do
  case "$stage" in unit|asan|fuzz) ;; *) echo "test.sh: unknown stage '$stage' in BNLAB_TEST_STAGES (unit, asan, fuzz)" >&2; exit 2 ;; esac
done
wants() { [[ " $stages " == *" $1 "* ]]; }
jobs=$(nproc)
fuzz_seconds="${BNLAB_FUZZ_SECONDS:-60}"
# libFuzzer reads 0 (and anything that is not a number) as "no time limit": refuse those.
if ! [[ "$fuzz_seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "test.sh: BNLAB_FUZZ_SECONDS is '$fuzz_seconds', expected a whole number of seconds >= 1" >&2
  exit 2
fi
stage_start() { echo "== test.sh: $1 ($(date -u +%H:%M:%S))"; SECONDS=0; }
stage_end() { echo "== test.sh: $1 done in ${SECONDS}s"; }

bash scripts/setup.sh

if wants unit; then
  stage_start unit
  bash scripts/build.sh
  ctest --test-dir build --output-on-failure -j"$jobs" --timeout 600
  stage_end unit
fi

if wants asan; then
  stage_start asan
  # -O1: the sanitizers' checks stay exact, and both compiling and the training tests stay
  # several times faster than at -O0.
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
    -DBNLAB_SANITIZE=ON -DBNLAB_BUILD_BENCH=OFF >/dev/null
  mapfile -t test_targets < <(ninja -C build-asan -t targets all | sed -n 's/^\(test_[a-z_]*\): .*/\1/p' | sort -u)
  cmake --build build-asan -j"$jobs" --target bnlab_cli "${test_targets[@]}"
  # halt_on_error: a sanitizer report fails the test that caused it, not just a log line.
  ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" --timeout 900
  stage_end asan
fi

if wants fuzz; then
  stage_start fuzz
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DBNLAB_FUZZ=ON \
    -DBNLAB_BUILD_TESTS=OFF -DBNLAB_BUILD_BENCH=OFF >/dev/null
  cmake --build build-fuzz -j"$jobs" --target fuzz_idx fuzz_model
  for target in idx model; do
    # New inputs go to build-fuzz/corpus-*, the committed seeds in fuzz/corpus/ stay as they are;
    # a crash leaves its input in build-fuzz/artifacts/ and fails this script.
    mkdir -p "build-fuzz/corpus-$target" build-fuzz/artifacts
    echo "test.sh: fuzz_$target for ${fuzz_seconds}s"
    log="build-fuzz/fuzz_$target.log"
    if ! "build-fuzz/fuzz/fuzz_$target" -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="build-fuzz/artifacts/$target-" -print_final_stats=1 \
      "build-fuzz/corpus-$target" "fuzz/corpus/$target" >"$log" 2>&1; then
      cat "$log"
      echo "test.sh: fuzz_$target found a problem (input saved in build-fuzz/artifacts/)" >&2
      exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || tail -n 5 "$log"
  done
  stage_end fuzz
fi
