#!/usr/bin/env python3
"""Write a DeepSeek-V4 checkpoint (HF layout, FP8 + FP4) as a GGUF file for llama.cpp.

Only for the side-by-side benchmark in scripts/llamacpp/compare.sh. llama.cpp's own converter
(convert_hf_to_gguf.py) needs torch >= 2.1 for float8 tensors, which Debian bookworm does not
ship; this one needs only numpy and llama.cpp's gguf-py (pass its directory with --gguf-py).

It stores the tensors the way llama.cpp's converter does for DeepSeek-V4, so the benchmark runs
the file a llama.cpp user would have:
  - FP8 weights with 128x128 E8M0 block scales -> dequantised, then Q8_0 (32-value blocks);
    `--fp8 bf16` stores them as BF16 instead, which is exact (for checking the conversion);
  - routed experts (FP4 E2M1, one E8M0 scale per 32) -> stacked MXFP4, bit-for-bit repacked;
  - 2-D BF16 tensors stay BF16, 1-D tensors and F32 tensors become F32;
  - the hash-routing table becomes I32; the MTP layers are left out (llama.cpp does not run them).
The vocabulary comes from tokenizer.json (DeepSeek's byte-level BPE, pre-tokenizer
"deepseek-v3" in llama.cpp's terms); a checkpoint without one (e.g. `dsv4 synth --preset
flash-width`) gets a byte-level BPE vocabulary of config.vocab_size tokens: 2 control tokens,
256 byte tokens, then merges of byte pairs.
"""

import argparse
import json
import re
import struct
import sys
import time
from pathlib import Path

import numpy as np


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path, help="checkpoint directory (config.json, *.safetensors)")
    p.add_argument("out", type=Path, help="output .gguf file")
    p.add_argument("--gguf-py", type=Path, required=True, help="llama.cpp's gguf-py directory")
    p.add_argument("--fp8", choices=("q8_0", "bf16"), default="q8_0",
                   help="FP8 weights as Q8_0 (llama.cpp's converter) or as BF16 (exact: every "
                        "E4M3 value times a power of two is a BF16 value; for correctness checks)")
    return p.parse_args()


class Checkpoint:
    """Tensors of a safetensors checkpoint, read on demand through memory maps."""

    DTYPES = {"F32": np.float32, "BF16": np.uint16, "F8_E4M3": np.uint8, "F8_E8M0": np.uint8,
              "I8": np.uint8, "U8": np.uint8, "I64": np.int64, "I32": np.int32}

    def __init__(self, root: Path):
        self.root = root
        self.entries = {}
        files = sorted(root.glob("*.safetensors"))
        if not files:
            sys.exit(f"error: no .safetensors files in {root}")
        for path in files:
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(n))
            data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                if info["dtype"] not in self.DTYPES:
                    sys.exit(f"error: {path.name}: tensor {name}: dtype {info['dtype']} not handled")
                self.entries[name] = (data, info)

    def __contains__(self, name):
        return name in self.entries

    def entry(self, name):
        if name not in self.entries:
            raise ValueError(f"tensor {name} is not in {self.root}")
        return self.entries[name]

    def dtype(self, name):
        return self.entry(name)[1]["dtype"]

    def shape(self, name):
        return tuple(self.entry(name)[1]["shape"])

    def get(self, name):
        data, info = self.entry(name)
        begin, end = info["data_offsets"]
        dt = np.dtype(self.DTYPES[info["dtype"]])
        return data[begin:end].view(dt).reshape(info["shape"])


def e4m3_table():
    t = np.zeros(256, dtype=np.float32)
    for code in range(256):
        sign = -1.0 if code & 0x80 else 1.0
        exp, man = (code >> 3) & 0xF, code & 7
        if exp == 0xF and man == 7:
            t[code] = np.nan
        elif exp == 0:
            t[code] = sign * man / 8.0 * 2.0 ** -6
        else:
            t[code] = sign * (1.0 + man / 8.0) * 2.0 ** (exp - 7)
    return t


E4M3 = e4m3_table()


def dequant_fp8(weight, scale):
    rows, cols = weight.shape
    factors = np.exp2(scale.astype(np.float32) - 127.0)
    factors = np.repeat(np.repeat(factors, 128, axis=0)[:rows], 128, axis=1)[:, :cols]
    return E4M3[weight] * factors


def mxfp4_blocks(packed, scale):
    """FP4 rows (element 2i in the low nibble of byte i) + per-32 E8M0 scales -> ggml block_mxfp4
    rows: per block one scale byte, then 16 bytes holding element j (low) and j + 16 (high)."""
    rows, half = packed.shape
    nb = half // 16
    if scale.shape != (rows, nb):
        raise ValueError(f"FP4 scale shape {scale.shape}, expected {(rows, nb)}")
    src = np.asarray(packed).reshape(rows, nb, 16)
    codes = np.stack((src & 0xF, src >> 4), axis=-1).reshape(rows, nb, 32)
    qs = codes[:, :, :16] | (codes[:, :, 16:] << 4)
    return np.concatenate((np.asarray(scale).reshape(rows, nb, 1), qs), axis=-1).reshape(rows, nb * 17)


def bf16_to_f32(a):
    return (a.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_exact(a):
    """float32 values that fit BF16 exactly (dequantised FP8) -> BF16 bits as bytes."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    if np.any(bits & 0xFFFF):
        raise ValueError("value not exactly representable in BF16")
    return (bits >> 16).astype(np.uint16).view(np.uint8)


def byte_vocab(n_vocab):
    """A byte-level BPE vocabulary: <bos>, <eos>, the 256 GPT-2 byte symbols, then byte-pair merges."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    symbols, extra = {}, 0
    for b in range(256):
        if b in printable:
            symbols[b] = chr(b)
        else:
            symbols[b] = chr(256 + extra)
            extra += 1
    byte_syms = [symbols[b] for b in range(256)]
    tokens = ["<bos>", "<eos>"] + byte_syms
    merges = []
    for a in byte_syms:
        for b in byte_syms:
            if len(tokens) >= n_vocab:
                break
            tokens.append(a + b)
            merges.append(f"{a} {b}")
    if len(tokens) < n_vocab:
        raise ValueError(f"vocab_size {n_vocab} is larger than the byte-pair vocabulary can fill "
                         f"({len(tokens)}); put the model's tokenizer.json beside config.json")
    types = [3, 3] + [1] * (n_vocab - 2)  # CONTROL for the two specials, NORMAL for the rest
    return tokens[:n_vocab], types, merges


def hf_bpe_vocab(tok, n_vocab):
    """tokenizer.json (byte-level BPE, as DeepSeek ships it) -> GGUF token list, types, merges.
    Ids without a token up to config.vocab_size become unused padding entries."""
    model = tok.get("model", {})
    if model.get("type") != "BPE":
        raise ValueError(f"tokenizer.json: model type {model.get('type')!r}, expected BPE")
    tokens = [None] * n_vocab
    types = [5] * n_vocab  # UNUSED until filled
    for text, i in model["vocab"].items():
        if i >= n_vocab:
            raise ValueError(f"tokenizer.json: token id {i} >= vocab_size {n_vocab}")
        tokens[i], types[i] = text, 1  # NORMAL
    for added in tok.get("added_tokens", []):
        i = added["id"]
        if i >= n_vocab:
            raise ValueError(f"tokenizer.json: added token id {i} >= vocab_size {n_vocab}")
        tokens[i], types[i] = added["content"], 3 if added.get("special") else 4  # CONTROL / USER_DEFINED
    tokens = [t if t is not None else f"[PAD{i}]" for i, t in enumerate(tokens)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return tokens, types, merges


def main():
    args = parse_args()
    sys.path.insert(0, str(args.gguf_py))
    import gguf  # noqa: E402  (from llama.cpp's tree, given on the command line)

    T, Q = gguf.MODEL_TENSOR, gguf.GGMLQuantizationType
    cfg = json.loads((args.model / "config.json").read_text())
    ck = Checkpoint(args.model)

    def field(name, where=cfg, within=""):
        if name not in where:
            raise ValueError(f"{args.model / 'config.json'}: no field '{within}{name}'")
        return where[name]

    n_layer = field("num_hidden_layers")
    if field("scoring_func") != "sqrtsoftplus":
        raise ValueError(f"config.json scoring_func {cfg['scoring_func']!r}, llama.cpp expects sqrtsoftplus")

    w = gguf.GGUFWriter(args.out, "deepseek4")
    # GGUF key (writer method) <- config.json field, as llama.cpp's converter maps them for V4.
    for method, name in [
            ("block_count", "num_hidden_layers"), ("context_length", "max_position_embeddings"),
            ("embedding_length", "hidden_size"), ("head_count", "num_attention_heads"),
            ("head_count_kv", "num_key_value_heads"), ("key_length", "head_dim"),
            ("value_length", "head_dim"), ("rope_freq_base", "rope_theta"),
            ("layer_norm_rms_eps", "rms_norm_eps"), ("expert_count", "n_routed_experts"),
            ("expert_used_count", "num_experts_per_tok"), ("rope_dimension_count", "qk_rope_head_dim"),
            ("q_lora_rank", "q_lora_rank"), ("sliding_window", "sliding_window"),
            ("expert_feed_forward_length", "moe_intermediate_size"),
            ("expert_shared_count", "n_shared_experts"), ("expert_weights_scale", "routed_scaling_factor"),
            ("expert_weights_norm", "norm_topk_prob"), ("indexer_head_count", "index_n_heads"),
            ("indexer_key_length", "index_head_dim"), ("indexer_top_k", "index_topk"),
            ("attention_output_group_count", "o_groups"), ("attention_output_lora_rank", "o_lora_rank"),
            ("attention_compress_ratios", "compress_ratios"),
            ("attention_compress_rope_freq_base", "compress_rope_theta"),
            ("hyper_connection_count", "hc_mult"), ("hyper_connection_sinkhorn_iterations", "hc_sinkhorn_iters"),
            ("hyper_connection_epsilon", "hc_eps"), ("hash_layer_count", "num_hash_layers")]:
        getattr(w, "add_" + method)(field(name))
    w.add_swiglu_clamp_exp([field("swiglu_limit")] * n_layer)
    w.add_swiglu_clamp_shexp([field("swiglu_limit")] * n_layer)
    w.add_embedding_length_out(field("hidden_size") * field("hc_mult"))
    w.add_expert_gating_func(gguf.ExpertGatingFuncType.SQRTSOFTPLUS)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_MXFP4_MOE)
    rope = cfg.get("rope_scaling") or {}
    if rope.get("type", rope.get("rope_type")) == "yarn":
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        for method, name in [("rope_scaling_factor", "factor"),
                             ("rope_scaling_orig_ctx_len", "original_max_position_embeddings"),
                             ("rope_scaling_yarn_beta_fast", "beta_fast"),
                             ("rope_scaling_yarn_beta_slow", "beta_slow")]:
            getattr(w, "add_" + method)(field(name, rope, "rope_scaling."))

    tok_path = args.model / "tokenizer.json"
    if tok_path.exists():
        tokens, types, merges = hf_bpe_vocab(json.loads(tok_path.read_text()), field("vocab_size"))
    else:
        tokens, types, merges = byte_vocab(field("vocab_size"))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("deepseek-v3")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(cfg.get("bos_token_id", 0))
    w.add_eos_token_id(cfg.get("eos_token_id", 1))
    w.add_add_bos_token(True)

    root = {"embed.weight": T.TOKEN_EMBD, "norm.weight": T.OUTPUT_NORM, "head.weight": T.OUTPUT,
            "hc_head_fn": T.HC_HEAD_FN, "hc_head_base": T.HC_HEAD_BASE, "hc_head_scale": T.HC_HEAD_SCALE}
    per_layer = {
        "hc_attn_fn": T.HC_ATTN_FN, "hc_attn_base": T.HC_ATTN_BASE, "hc_attn_scale": T.HC_ATTN_SCALE,
        "hc_ffn_fn": T.HC_FFN_FN, "hc_ffn_base": T.HC_FFN_BASE, "hc_ffn_scale": T.HC_FFN_SCALE,
        "attn.attn_sink": T.ATTN_SINKS, "attn.wq_a.weight": T.ATTN_Q_A, "attn.wq_b.weight": T.ATTN_Q_B,
        "attn.q_norm.weight": T.ATTN_Q_A_NORM, "attn.wkv.weight": T.ATTN_KV,
        "attn.kv_norm.weight": T.ATTN_KV_NORM, "attn.wo_a.weight": T.ATTN_OUT_A,
        "attn.wo_b.weight": T.ATTN_OUT_B, "attn.compressor.ape": T.ATTN_COMPRESSOR_APE,
        "attn.compressor.wkv.weight": T.ATTN_COMPRESSOR_WKV,
        "attn.compressor.wgate.weight": T.ATTN_COMPRESSOR_WGATE,
        "attn.compressor.norm.weight": T.ATTN_COMPRESSOR_NORM,
        "attn.indexer.wq_b.weight": T.INDEXER_ATTN_Q_B,
        "attn.indexer.weights_proj.weight": T.INDEXER_PROJ,
        "attn.indexer.compressor.ape": T.INDEXER_COMPRESSOR_APE,
        "attn.indexer.compressor.wkv.weight": T.INDEXER_COMPRESSOR_WKV,
        "attn.indexer.compressor.wgate.weight": T.INDEXER_COMPRESSOR_WGATE,
        "attn.indexer.compressor.norm.weight": T.INDEXER_COMPRESSOR_NORM,
        "attn_norm.weight": T.ATTN_NORM, "ffn_norm.weight": T.FFN_NORM,
        "ffn.gate.weight": T.FFN_GATE_INP, "ffn.gate.bias": T.FFN_EXP_PROBS_B,
        "ffn.shared_experts.w1.weight": T.FFN_GATE_SHEXP, "ffn.shared_experts.w2.weight": T.FFN_DOWN_SHEXP,
        "ffn.shared_experts.w3.weight": T.FFN_UP_SHEXP,
    }
    experts = {"w1": T.FFN_GATE_EXP, "w2": T.FFN_DOWN_EXP, "w3": T.FFN_UP_EXP}

    plan = []  # (gguf name, byte/array shape, numpy dtype, raw ggml type or None, producer)

    def add(gname, src):
        dt = ck.dtype(src)
        shape = ck.shape(src)
        if dt == "F8_E4M3":
            scale = src[: -len(".weight")] + ".scale"
            ck.entry(scale)  # before any byte is written
            rows, cols = shape
            if args.fp8 == "bf16":
                plan.append((gname, (rows, cols * 2), np.uint8, Q.BF16,
                             lambda: f32_to_bf16_exact(dequant_fp8(ck.get(src), ck.get(scale)))))
            else:
                plan.append((gname, (rows, cols // 32 * 34), np.uint8, Q.Q8_0,
                             lambda: gguf.quants.quantize(dequant_fp8(ck.get(src), ck.get(scale)), Q.Q8_0)))
        elif dt == "BF16" and len(shape) >= 2:
            plan.append((gname, shape[:-1] + (shape[-1] * 2,), np.uint8, Q.BF16,
                         lambda: np.ascontiguousarray(ck.get(src)).view(np.uint8)))
        elif dt == "BF16":
            plan.append((gname, shape, np.float32, None, lambda: bf16_to_f32(ck.get(src))))
        elif dt == "F32":
            plan.append((gname, shape, np.float32, None, lambda: np.ascontiguousarray(ck.get(src))))
        elif dt == "I64":
            plan.append((gname, shape, np.int32, None, lambda: ck.get(src).astype(np.int32)))
        else:
            raise ValueError(f"tensor {src}: dtype {dt} has no GGUF mapping here")

    for src, key in root.items():
        add(gguf.TENSOR_NAMES[key] + ".weight", src)
    for il in range(n_layer):
        for rest, key in per_layer.items():
            src = f"layers.{il}.{rest}"
            if src not in ck:
                continue
            if rest == "ffn.gate.bias" and il < field("num_hash_layers"):
                continue  # hash layers route by token id
            suffix = ".bias" if rest.endswith(".bias") else ".weight"
            add(gguf.TENSOR_NAMES[key].format(bid=il) + suffix, src)
        if il < cfg["num_hash_layers"]:
            add(gguf.TENSOR_NAMES[T.FFN_GATE_TID2EID].format(bid=il) + ".weight",
                f"layers.{il}.ffn.gate.tid2eid")
        n_exp = cfg["n_routed_experts"]
        for proj, key in experts.items():
            rows, half = ck.shape(f"layers.{il}.ffn.experts.0.{proj}.weight")
            for e in range(n_exp):  # all present and alike, before any byte is written
                base = f"layers.{il}.ffn.experts.{e}.{proj}"
                if ck.shape(base + ".weight") != (rows, half) or ck.shape(base + ".scale") != (rows, half // 16):
                    raise ValueError(f"{base}: shapes {ck.shape(base + '.weight')} / {ck.shape(base + '.scale')}, "
                                     f"expected {(rows, half)} / {(rows, half // 16)} as expert 0")

            def stacked(il=il, proj=proj, rows=rows, half=half):
                out = np.empty((n_exp, rows, half // 16 * 17), dtype=np.uint8)
                for e in range(n_exp):
                    base = f"layers.{il}.ffn.experts.{e}.{proj}"
                    out[e] = mxfp4_blocks(ck.get(base + ".weight"), ck.get(base + ".scale"))
                return out
            plan.append((gguf.TENSOR_NAMES[key].format(bid=il) + ".weight",
                         (n_exp, rows, half // 16 * 17), np.uint8, Q.MXFP4, stacked))

    for gname, shape, dt, raw, _ in plan:
        nbytes = int(np.prod(shape)) * np.dtype(dt).itemsize
        w.add_tensor_info(gname, shape, np.dtype(dt), nbytes, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    t0 = time.time()
    for i, (gname, shape, dt, raw, produce) in enumerate(plan):
        data = produce()
        if data.shape != shape or data.dtype != np.dtype(dt):
            raise ValueError(f"{gname}: produced {data.shape} {data.dtype}, planned {shape} {np.dtype(dt)}")
        w.write_tensor_data(data)
        print(f"\r[{i + 1}/{len(plan)}] {gname:<40} {time.time() - t0:6.1f} s", end="", file=sys.stderr)
    print(file=sys.stderr)
    w.close()
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e9:.2f} GB)")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, KeyError, OSError) as e:
        sys.exit(f"error: {e}")
