#!/usr/bin/env bash
# Side-by-side peer benchmark: the same BatchNorm shapes and operations through bnlab, oneDNN 2.6
# (Debian libdnnl-dev) and PyTorch 1.13 (Debian python3-torch), in one run, one after the other,
# with the same thread count; prints the CPU, the date and a Markdown table (ms, speed-ups, bnlab
# against the copy probe), and writes the table to --out.
#
#   bash scripts/bench_peers.sh [--threads N] [--out FILE] [--quick] [--repetitions N]
#                               [--shape NAME] [--warm-cache] [--torch-mode ops|autograd]
#                               [--build-dir DIR] [--sections LIST] [--rounds N]
#
#   --threads N        threads for every library (default 2): OMP_NUM_THREADS, BNLAB_THREADS,
#                      omp_set_num_threads and torch.set_num_threads
#   --out FILE         the Markdown report (default out/bench_peers.md); the drivers' raw output
#                      goes beside it as FILE.<library>.<round>.txt
#   --quick            1 warm-up, 3 repetitions, and one round of the epoch section: checks
#                      that everything runs, measures nothing
#   --repetitions N    samples per median (default 21)
#   --shape NAME       one shape only (e.g. 32x300_NC; the kernel section)
#   --warm-cache       no cache eviction before the samples of the shapes of 1 MiB and more
#                      (default: cold caches there, bench/peers/README.md)
#   --torch-mode MODE  ops (default: ATen operators, no autograd) or autograd; see
#                      bench/peers/torch_batchnorm.py for why ops is the default
#   --build-dir DIR    CMake build folder (default build-peers)
#   --sections LIST    comma-separated subset of: kernels, epoch (default both)
#   --rounds N         run every driver N times, interleaved (default 5); each entry of the
#                      kernel table is a library's median round, so a burst of load (or a lucky
#                      quiet minute) on a shared host moves one round of one library, not the
#                      ratio; the epoch's speed-up is the median of the rounds' own ratios
#
# Measure on a quiet machine: the drivers run one after the other (each operation timed beside a
# copy probe in its own process, and compared in those units: bench/peers/README.md), so anything
# else running shows up as noise in whichever library it overlaps.
set -euo pipefail
script="$(realpath "$0")"
caller="$PWD"  # a relative --out names a file from where the script was started
cd "$(dirname "$script")/.."

threads=2
out=out/bench_peers.md
build_dir=build-peers
torch_mode=ops
rounds=5
quick=0
driver_args=()
chosen_sections=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --out) out="$2"; [[ "$out" == /* ]] || out="$caller/$out"; shift 2 ;;
    --quick) driver_args+=(--quick); quick=1; shift ;;
    --repetitions) driver_args+=(--repetitions "$2"); shift 2 ;;
    --shape) driver_args+=(--shape "$2"); shift 2 ;;
    --warm-cache) driver_args+=(--warm-cache); shift ;;
    --torch-mode) torch_mode="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --sections) IFS=, read -r -a chosen_sections <<<"$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$script"; exit 0 ;;
    *) echo "bench_peers: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ "$threads" =~ ^[1-9][0-9]*$ ]]; then
  echo "bench_peers: --threads must be a positive integer, got '$threads'" >&2
  exit 2
fi
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
  echo "bench_peers: --rounds must be a positive integer, got '$rounds'" >&2
  exit 2
fi
case "$torch_mode" in ops|autograd) ;; *) echo "bench_peers: --torch-mode must be ops or autograd" >&2; exit 2 ;; esac
sections=("${chosen_sections[@]:-kernels}")
[[ -n "${chosen_sections[*]:-}" ]] || sections=(kernels epoch)
for section in "${sections[@]}"; do
  case "$section" in kernels|epoch) ;; *) echo "bench_peers: unknown section '$section' (kernels, epoch)" >&2; exit 2 ;; esac
done

# libdnnl-dev for the oneDNN driver; libgoogle-perftools4 brings libtcmalloc-minimal4 for PyTorch.
BNLAB_SETUP_EXTRA="${BNLAB_SETUP_EXTRA:-} libdnnl-dev libgoogle-perftools4" bash scripts/setup.sh

cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
targets=(bnlab_batchnorm bnlab_probe bench_training)
# bench/peers/CMakeLists.txt defines onednn_batchnorm only where it found oneDNN.
# grep reads all of ninja's output (with -q it could stop early, and pipefail would then see
# ninja die of SIGPIPE and take oneDNN for missing).
if ninja -C "$build_dir" -t targets all | grep '^onednn_batchnorm:' >/dev/null; then
  targets+=(onednn_batchnorm)
else
  echo "bench_peers: oneDNN not found by CMake; its column stays empty" >&2
fi
cmake --build "$build_dir" -j"$(nproc)" --target "${targets[@]}"

export OMP_NUM_THREADS="$threads" BNLAB_THREADS="$threads"
mkdir -p "$(dirname "$out")"
raw="${out%.md}"
tcmalloc=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
if [[ ! -e "$tcmalloc" ]]; then
  echo "bench_peers: $tcmalloc missing; PyTorch runs on glibc malloc (its page faults get timed)" >&2
fi
cpu=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')
when=$(date -u '+%Y-%m-%d %H:%M:%S UTC')

echo "CPU: ${cpu:-unknown} ($(nproc) logical cores)"
echo "Date: $when"
echo "Threads: $threads"
echo

# One section per comparison; each runs its drivers and prints (and appends to --out) its own
# Markdown.
section_kernels() {
  local files=() round
  for ((round = 1; round <= rounds; round++)); do
    echo "bench_peers: round $round of $rounds: bnlab..." >&2
    "$build_dir/bench/peers/bnlab_batchnorm" --threads "$threads" "${driver_args[@]}" >"$raw.bnlab.$round.txt"
    files+=("$raw.bnlab.$round.txt")
    if [[ " ${targets[*]} " == *" onednn_batchnorm "* ]]; then
      echo "bench_peers: round $round of $rounds: oneDNN..." >&2
      "$build_dir/bench/peers/onednn_batchnorm" --threads "$threads" "${driver_args[@]}" >"$raw.onednn.$round.txt"
      files+=("$raw.onednn.$round.txt")
    fi
    echo "bench_peers: round $round of $rounds: PyTorch..." >&2
    # tcmalloc keeps freed pages instead of returning them to the kernel (release rate 0), so the
    # outputs PyTorch allocates per call are not page-faulted in again on every call.
    LD_PRELOAD="$tcmalloc" TCMALLOC_RELEASE_RATE=0 /usr/bin/python3 bench/peers/torch_batchnorm.py \
      --threads "$threads" --mode "$torch_mode" --probe-lib "$build_dir/bench/peers/libbnlab_probe.so" \
      "${driver_args[@]}" >"$raw.pytorch.$round.txt"
    files+=("$raw.pytorch.$round.txt")
  done
  /usr/bin/python3 bench/peers/merge_peers.py "${files[@]}" \
    --preamble "CPU: ${cpu:-unknown} ($(nproc) logical cores)" --preamble "Date: $when" \
    --preamble "Threads: $threads; PyTorch mode: $torch_mode; rounds: $rounds (each entry: a library's median round)${driver_args[*]:+; driver options: ${driver_args[*]}}" \
    --out "$raw.kernels.md"
  cat "$raw.kernels.md" >>"$out"
}

# One epoch of the seed's Approach One model (batch 32, SGD, 1,719 steps), trained by bnlab
# (bench_training, which also splits the time into GEMM, BatchNorm and the rest) and by PyTorch
# in the same run with the same threads. The two run back to back in every round, first one then
# the other by turns, and the speed-up is the median of the rounds' own ratios: the host's phase
# can change from one minute to the next (a slow phase stretched bnlab's epoch 2x and PyTorch's
# 1.5x), and the ratio of two medians could pair one library's slow round with the other's fast one.
section_epoch() {
  local round epoch_rounds=$rounds
  ((quick)) && epoch_rounds=1
  : >"$raw.epoch_bnlab.txt"
  : >"$raw.epoch_pytorch.txt"
  epoch_bnlab() {
    echo "bench_peers: round $round of $epoch_rounds: epoch, bnlab..." >&2
    "$build_dir/bench/bench_training" --model bn --epochs 2 --threads "$threads" >>"$raw.epoch_bnlab.txt"
  }
  epoch_pytorch() {
    echo "bench_peers: round $round of $epoch_rounds: epoch, PyTorch..." >&2
    LD_PRELOAD="$tcmalloc" TCMALLOC_RELEASE_RATE=0 /usr/bin/python3 bench/peers/torch_mlp_epoch.py \
      --threads "$threads" --epochs 2 >>"$raw.epoch_pytorch.txt"
  }
  for ((round = 1; round <= epoch_rounds; round++)); do
    if ((round % 2)); then epoch_bnlab; epoch_pytorch; else epoch_pytorch; epoch_bnlab; fi
  done
  /usr/bin/python3 bench/peers/epoch_table.py "$raw.epoch_bnlab.txt" "$raw.epoch_pytorch.txt" >"$raw.epoch.md"
  cat "$raw.epoch.md"
  cat "$raw.epoch.md" >>"$out"
}

{
  echo "# bnlab peer benchmark"
  echo
} >"$out"
for section in "${sections[@]}"; do
  "section_$section"
  echo >>"$out"
done
echo "bench_peers: wrote $out (raw driver output: $raw.*.txt)" >&2
# The check sums are the check that every library computed the same operation: a disagreement
# fails the run (the table is written all the same, with the differing sums listed).
if grep -q 'check sums differ' "$out"; then
  echo "bench_peers: some check sums differ from bnlab's (listed in $out)" >&2
  exit 1
fi
