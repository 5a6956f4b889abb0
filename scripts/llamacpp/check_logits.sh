#!/usr/bin/env bash
# Checks that llama.cpp runs the same model as dsv4 from the GGUF that dsv4_to_gguf.py wrote:
# both engines compute the logits of one token stream (first half prefilled, second half
# decoded one token at a time in dsv4, one batch in llama.cpp), and the rows are compared.
# Both are compared with dsv4 --numerics reference, next to dsv4's own fast numerics: on a random
# MoE the routers' top-k flips with tiny numerical differences, so fast vs reference is the
# yardstick for "the same model, other rounding". The GGUF holds the FP8 weights requantised to
# Q8_0 as llama.cpp's converter does (dsv4_to_gguf.py --fp8 bf16 writes them exactly instead).
#
#   scripts/llamacpp/check_logits.sh [MODEL_DIR]      (run compare.sh once first: it builds
#                                                       llama.cpp and writes the GGUF)
# Environment: LLAMACPP_DIR, GGUF as in compare.sh; NTOK (32) tokens, SEED (1).
set -euo pipefail
cd "$(dirname "$0")/../.."

MODEL=${1:-models/flash-width}
MODEL=${MODEL%/}
LC=${LLAMACPP_DIR:-build/llamacpp}
GGUF=${GGUF:-$MODEL.gguf}
NTOK=${NTOK:-32}
SEED=${SEED:-1}
WORK=build/llamacpp-check
PY=python3
$PY -c 'import numpy' 2>/dev/null || PY=/usr/bin/python3

[ -f "$GGUF" ] && [ -d "$LC/build/bin" ] || { echo "error: run scripts/llamacpp/compare.sh first (llama.cpp build and $GGUF)" >&2; exit 1; }
mkdir -p "$WORK"
g++ -O2 -std=c++17 scripts/llamacpp/llama_logits.cpp -I"$LC/src/include" -I"$LC/src/ggml/include" \
  -L"$LC/build/bin" -lllama -Wl,-rpath,"$(cd "$LC/build/bin" && pwd)" -o "$WORK/llama_logits"

vocab=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['vocab_size'])" "$MODEL/config.json")
tokens=$($PY -c "import random,sys; r=random.Random(int(sys.argv[1])); print(','.join(['0']+[str(r.randrange(2,int(sys.argv[2]))) for _ in range(int(sys.argv[3])-1)]))" "$SEED" "$vocab" "$NTOK")
P=$((NTOK / 2))

build/dsv4 logits --model "$MODEL" --tokens "$tokens" --prompt-len "$P" --numerics reference --out "$WORK/reference.npy" 2>/dev/null
build/dsv4 logits --model "$MODEL" --tokens "$tokens" --prompt-len "$P" --numerics fast --out "$WORK/fast.npy" 2>/dev/null
"$WORK/llama_logits" "$GGUF" "$tokens" "$WORK/llama.f32" 2>/dev/null

$PY - "$WORK" "$P" <<'EOF'
import sys
import numpy as np
work, P = sys.argv[1], int(sys.argv[2])
ref = np.load(f"{work}/reference.npy")           # rows: positions P-1 .. n-1
fast = np.load(f"{work}/fast.npy")
llama = np.fromfile(f"{work}/llama.f32", dtype=np.float32).reshape(-1, ref.shape[1])[P - 1:]
assert llama.shape == ref.shape, (llama.shape, ref.shape)

def compare(name, x):
    argmax = (x.argmax(1) == ref.argmax(1)).mean()
    top5 = np.mean([len(set(np.argsort(-a)[:5]) & set(np.argsort(-b)[:5])) / 5 for a, b in zip(x, ref)])
    rel = np.linalg.norm(x - ref, axis=1) / np.linalg.norm(ref, axis=1)
    print(f"{name:<28} argmax agree {argmax:4.0%}, top-5 overlap {top5:4.0%}, "
          f"relative L2 error median {np.median(rel):.3f} max {rel.max():.3f}")
    return argmax, np.median(rel)

print(f"{ref.shape[0]} positions x {ref.shape[1]} logits, each against dsv4 --numerics reference:")
compare("dsv4 --numerics fast", fast)
argmax, rel = compare("llama.cpp", llama)
# Unrelated logits give a relative error near 1.4 and argmax agreement near 1/vocab; numerical
# noise through a random MoE (router flips) gives errors of the size of fast vs reference.
sys.exit(0 if argmax >= 0.25 and rel < 0.5 else 1)
EOF
