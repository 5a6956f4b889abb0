#!/usr/bin/env bash
# Side by side: `dsv4 bench` against llama.cpp's `llama-bench` on the same checkpoint and
# machine, interleaved (the two engines alternate, depth by depth, for several rounds, so both
# see the same drift in the machine's bandwidth).
#
#   scripts/llamacpp/compare.sh [MODEL_DIR]        (default models/flash-width)
#
# Environment: DEPTHS (0,4096), P (512), N (64), REPS (3), ROUNDS (3), THREADS (2),
#   LLAMACPP_DIR (build/llamacpp: where llama.cpp is fetched and built), GGUF (MODEL_DIR.gguf),
#   OUT (build/llamacpp-compare.csv; the engines' stderr goes to the .log beside it).
#
# llama.cpp comes from npm's node-llama-cpp 3.22.1, which bundles its llama.cpp source as a git
# bundle (llama.cpp at de3ff81, 2026-09-28, with DeepSeek-V4 support); it is built for this CPU
# (-march=native) without AMX: ggml's AMX matmul rejects the permuted input of DeepSeek-V4's
# grouped output projection (GGML_ASSERT in the scheduler), and with that input made contiguous
# it crashes in ggml_backend_amx_mul_mat. The checkpoint is converted by dsv4_to_gguf.py (FP8 ->
# Q8_0, FP4 experts -> MXFP4, as llama.cpp's own converter does; that one needs torch >= 2.1).
set -euo pipefail
cd "$(dirname "$0")/../.."

MODEL=${1:-models/flash-width}
MODEL=${MODEL%/}
DEPTHS=${DEPTHS:-0,4096}
P=${P:-512}
N=${N:-64}
REPS=${REPS:-3}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
LC=${LLAMACPP_DIR:-build/llamacpp}
GGUF=${GGUF:-$MODEL.gguf}
OUT=${OUT:-build/llamacpp-compare.csv}
LOG=${OUT%.csv}.log

[ -f "$MODEL/config.json" ] || { echo "error: $MODEL/config.json not found (make one with: build/dsv4 synth --preset flash-width --seed 1 --out $MODEL)" >&2; exit 1; }
[ -x build/dsv4 ] || { echo "error: build/dsv4 not found; run scripts/build.sh first" >&2; exit 1; }

if [ ! -x "$LC/build/bin/llama-bench" ]; then
  echo "== fetching and building llama.cpp in $LC (several minutes)" >&2
  mkdir -p "$LC"
  if [ ! -d "$LC/src" ]; then
    (cd "$LC" && npm pack --silent node-llama-cpp@3.22.1 >/dev/null && tar xzf node-llama-cpp-3.22.1.tgz \
       && git -c advice.detachedHead=false clone -q package/llama/gitRelease.bundle src)
  fi
  noamx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  cmake -S "$LC/src" -B "$LC/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DCMAKE_C_FLAGS="$noamx" -DCMAKE_CXX_FLAGS="$noamx" -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
  ninja -C "$LC/build" llama-bench >/dev/null
fi

if [ ! -f "$GGUF" ]; then
  echo "== converting $MODEL to $GGUF" >&2
  PY=python3
  $PY -c 'import numpy' 2>/dev/null || PY=/usr/bin/python3
  $PY -c 'import numpy' 2>/dev/null || { echo "error: python3 needs numpy (apt install python3-numpy)" >&2; exit 1; }
  $PY scripts/llamacpp/dsv4_to_gguf.py "$MODEL" "$GGUF.tmp" --gguf-py "$LC/src/gguf-py"
  mv "$GGUF.tmp" "$GGUF"
fi

mkdir -p "$(dirname "$OUT")"
echo "engine,round,test,depth,tok_per_s" > "$OUT"
: > "$LOG"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

run_dsv4() {  # round depth
  build/dsv4 bench --model "$MODEL" -p "$P" -n "$N" -d "$2" --threads "$THREADS" --reps "$REPS" --csv 2>>"$LOG" > "$tmp"
  python3 - "$tmp" "$1" >> "$OUT" <<'EOF'
import csv, sys
for row in csv.DictReader(l for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")):
    print(f"dsv4,{sys.argv[2]},{row['test']},{row['depth']},{float(row['tok_per_s']):.2f}")
EOF
}

run_llama() {  # round depth
  "$LC/build/bin/llama-bench" -m "$GGUF" -p "$P" -n "$N" -d "$2" -t "$THREADS" -r "$REPS" -o jsonl 2>>"$LOG" > "$tmp"
  python3 - "$tmp" "$1" >> "$OUT" <<'EOF'
import json, statistics, sys
for line in open(sys.argv[1]):
    row = json.loads(line)
    test = f"pp{row['n_prompt']}" if row["n_gen"] == 0 else f"tg{row['n_gen']}"
    print(f"llama.cpp,{sys.argv[2]},{test},{row['n_depth']},{statistics.median(row['samples_ts']):.2f}")
EOF
}

for r in $(seq 1 "$ROUNDS"); do
  for d in ${DEPTHS//,/ }; do
    if [ $((r % 2)) -eq 1 ]; then order="dsv4 llama"; else order="llama dsv4"; fi
    for e in $order; do
      echo "== round $r/$ROUNDS, depth $d: $e" >&2
      "run_$e" "$r" "$d"
    done
  done
done

python3 - "$OUT" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
keys = sorted({(r["test"][:2], r["test"], int(r["depth"])) for r in rows}, key=lambda k: (k[0] != "pp", k[2]))
print(f"{'test':>8} {'depth':>7} {'dsv4 tok/s':>11} {'llama.cpp':>10} {'ratio':>6}   (medians over rounds)")
for _, test, depth in keys:
    med = {}
    for eng in ("dsv4", "llama.cpp"):
        v = [float(r["tok_per_s"]) for r in rows if r["engine"] == eng and r["test"] == test and int(r["depth"]) == depth]
        med[eng] = statistics.median(v) if v else float("nan")
    print(f"{test:>8} {depth:>7} {med['dsv4']:>11.2f} {med['llama.cpp']:>10.2f} {med['dsv4'] / med['llama.cpp']:>5.2f}x")
EOF
echo "rows: $OUT, engine logs (bandwidth probe, load times): $LOG" >&2
