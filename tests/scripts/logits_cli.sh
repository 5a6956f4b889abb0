#!/usr/bin/env bash
# CLI contract of `dsv4 logits` / `dsv4 layers` against the golden data, through compare_golden.py:
# reference numerics must be EXACT (also chunked), fast numerics WITHIN-NOISE; bad arguments and a
# bad model directory must exit non-zero with one clear line on stderr.
set -euo pipefail
dsv4="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
data="$root/tests/data"
py=/usr/bin/python3
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

tokens_of() { "$py" -c "import json,sys; m=json.load(open(sys.argv[1])); print(','.join(map(str, m['tokens'][:int(sys.argv[2])])))" "$1" "$2"; }

case_a="$data/tiny-a/P017_D032"
toks="$(tokens_of "$case_a/meta.json" 49)"
"$dsv4" logits --model "$data/tiny-a/ckpt" --tokens "$toks" --prompt-len 17 --numerics reference --out "$tmp/ref.npy"
"$py" "$data/compare_golden.py" "$case_a" --logits "$tmp/ref.npy" | tee "$tmp/v1"
grep -q "logits: EXACT" "$tmp/v1"
"$dsv4" logits --model "$data/tiny-a/ckpt" --tokens "$toks" --prompt-len 17 --numerics reference --chunk 5 --out "$tmp/chunk.npy"
cmp "$tmp/ref.npy" "$tmp/chunk.npy"
# MTP needs the token after the last position: pass P+D+1 tokens, compare the first 1+D rows
toks1="$(tokens_of "$case_a/meta.json" 50)"
"$dsv4" logits --model "$data/tiny-a/ckpt" --tokens "$toks1" --prompt-len 17 --numerics fast --mtp --out "$tmp/fast.npy"
"$py" -c "import numpy as np,sys; a=np.load(sys.argv[1]); np.save(sys.argv[2], a[:33]); m=np.load(sys.argv[3]); assert m.shape==(33,1024), m.shape" \
  "$tmp/fast.npy" "$tmp/fast33.npy" "$tmp/fast.mtp.npy"
"$py" "$data/compare_golden.py" "$case_a" --logits "$tmp/fast33.npy" --mtp "$tmp/fast.mtp.npy"

case_t="$data/tiny-a/P064_D032"
toks="$(tokens_of "$case_t/meta.json" 96)"
"$dsv4" layers --model "$data/tiny-a/ckpt" --tokens "$toks" --prompt-len 64 --teacher "$case_t/teacher/hidden.bf16.npy" --numerics fast --out "$tmp/layers.npy"
"$py" "$data/compare_golden.py" "$case_t" --teacher "$tmp/layers.npy"

# errors: non-zero exit and one line naming the problem
expect_fail() {
  if "$dsv4" "$@" 2>"$tmp/err"; then echo "expected failure: $*"; exit 1; fi
  [ "$(wc -l <"$tmp/err")" -ge 1 ] || { echo "no error message: $*"; exit 1; }
  cat "$tmp/err"
}
expect_fail logits --model "$tmp/nowhere" --tokens 1,2 --prompt-len 1 --out "$tmp/x.npy"
expect_fail logits --model "$data/tiny-a/ckpt" --tokens 1,x,2 --prompt-len 1 --out "$tmp/x.npy"
expect_fail logits --model "$data/tiny-a/ckpt" --tokens 1,2 --prompt-len 3 --out "$tmp/x.npy"
expect_fail logits --model "$data/tiny-a/ckpt" --tokens 1,99999 --prompt-len 1 --out "$tmp/x.npy"
expect_fail logits --model "$data/tiny-a/ckpt" --tokens 1,2 --prompt-len 1 --numerics exact --out "$tmp/x.npy"
expect_fail layers --model "$data/tiny-a/ckpt" --tokens 1,2 --prompt-len 1 --teacher "$case_t/teacher/hidden.bf16.npy" --out "$tmp/x.npy"
echo "logits_cli: OK"
