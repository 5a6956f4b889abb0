#!/usr/bin/env bash
# One command from a fresh clone to a running session on the built-in default model:
# installs the dependencies, builds, writes the default model (a small V4-architecture checkpoint
# with RANDOM weights, the full 129,280-token vocabulary and DeepSeek's real tokenizer) into
# models/default once, then runs it.
#   scripts/quickstart.sh            one-shot answer to a sample prompt (dsv4 run)
#   scripts/quickstart.sh chat       interactive chat (dsv4 chat)
#   scripts/quickstart.sh serve      OpenAI-compatible server + web chat on http://127.0.0.1:8000/
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mode="${1:-run}"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
dsv4="$root/build/dsv4"
model="$root/models/default"
if [ ! -f "$model/config.json" ] || [ ! -f "$model/tokenizer.json" ]; then
  echo "quickstart: writing the default model to $model (random weights, real tokenizer)" >&2
  "$dsv4" synth --preset default --out "$model"
  cp "$root/tests/js/tokenizer/tokenizer.json" "$root/tests/js/tokenizer/tokenizer_config.json" "$model/"
fi
case "$mode" in
  run)   exec "$dsv4" run --model "$model" -p "${PROMPT:-Write a haiku about long context windows.}" -n "${N:-48}" ;;
  chat)  exec "$dsv4" chat --model "$model" ;;
  serve) exec "$dsv4" serve --model "$model" --host 127.0.0.1 --port "${PORT:-8000}" ;;
  *) echo "usage: scripts/quickstart.sh [run|chat|serve]" >&2; exit 2 ;;
esac
