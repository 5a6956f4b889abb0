#!/usr/bin/env bash
# dsv4 logits: --kv-layout bf16 == compact, --save-session / --load-session reproduce the logits,
# --mem-limit refuses an oversized KV cache before any work, bad session files are rejected.
# Usage: kv_session_cli.sh <dsv4> <build-dir>
set -euo pipefail
bin="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
model="$root/tests/data/tiny-a/ckpt"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
toks="$(seq -s, 5 45)"  # 41 tokens
common=(--model "$model" --tokens "$toks" --prompt-len 30 --numerics reference)
"$bin" logits "${common[@]}" --out "$tmp/a.npy"
"$bin" logits "${common[@]}" --kv-layout bf16 --chunk 7 --out "$tmp/b.npy"
cmp "$tmp/a.npy" "$tmp/b.npy"
"$bin" logits "${common[@]}" --chunk 11 --save-session "$tmp/s.dsv4s" --out "$tmp/c.npy"
cmp "$tmp/a.npy" "$tmp/c.npy"
"$bin" logits "${common[@]}" --load-session "$tmp/s.dsv4s" --out "$tmp/d.npy"
cmp "$tmp/a.npy" "$tmp/d.npy"
if "$bin" logits "${common[@]}" --mem-limit 1K --out "$tmp/e.npy" 2>"$tmp/err"; then
  echo "expected --mem-limit 1K to fail"; exit 1
fi
grep -q "memory limit" "$tmp/err"
test ! -e "$tmp/e.npy"
head -c 100 "$tmp/s.dsv4s" > "$tmp/bad.dsv4s"
if "$bin" logits "${common[@]}" --load-session "$tmp/bad.dsv4s" --out "$tmp/f.npy" 2>"$tmp/err"; then
  echo "expected a truncated session file to fail"; exit 1
fi
grep -q "truncated" "$tmp/err"
echo "kv_session_cli: ok"
