#!/usr/bin/env bash
# Million-token run on the CPU (resumable): synthesises the `longctx` preset (if missing), prefills
# a deterministic 1,048,576-token stream in chunks with --numerics fast, saving the session every
# SAVE_EVERY chunks to $WORK/session.dsv4s, and times decode at the depths in DEPTHS. Rerunning
# the script after an interruption (Ctrl-C, kill, reboot) resumes from the last saved session;
# depths already measured are kept in $WORK/results.jsonl. Finally writes $WORK/decode.svg.
#
#   scripts/long_context.sh [WORK_DIR]      (env: DSV4, CONTEXT, DEPTHS, CHUNK, SAVE_EVERY, DECODE, THREADS)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$root/build/longctx}"
dsv4="${DSV4:-$root/build/dsv4}"
context="${CONTEXT:-1048576}"
depths="${DEPTHS:-4096,65536,262144,1048576}"
chunk="${CHUNK:-2048}"
save_every="${SAVE_EVERY:-8}"
decode="${DECODE:-16}"
threads="${THREADS:-0}"
mkdir -p "$work"
if [ ! -f "$work/model/config.json" ]; then
  "$dsv4" synth --preset longctx --seed 7 --out "$work/model" --quiet
fi
"$dsv4" inspect --model "$work/model" | grep -A3 "kv cache" >&2 || true
"$dsv4" longctx --model "$work/model" --numerics fast --threads "$threads" --context "$context" --depths "$depths" \
  --chunk "$chunk" --save-every "$save_every" --decode "$decode" --session "$work/session.dsv4s" \
  | tee -a "$work/results.jsonl"
python3 "$root/scripts/plot_long_context.py" "$work/results.jsonl" "$work/decode.svg"
echo "results: $work/results.jsonl  plot: $work/decode.svg" >&2
