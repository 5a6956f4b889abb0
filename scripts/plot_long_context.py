#!/usr/bin/env python3
"""Decode ms/token vs context depth (from `dsv4 longctx` JSON lines) as a Markdown table on stdout
and a small self-contained SVG line plot (log2 x axis). Usage: plot_long_context.py results.jsonl out.svg"""
import json
import math
import sys


def main():
    rows = {}
    for line in open(sys.argv[1]):
        line = line.strip()
        if line.startswith("{"):
            r = json.loads(line)
            rows[r["depth"]] = r  # a resumed run's later line wins
    pts = sorted(rows.values(), key=lambda r: r["depth"])
    print("| depth | decode ms/token (wall, median) | CPU ms/token (median) | KV allocated | kv_budget at depth | RSS |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in pts:
        cpu = f"{r['decode_cpu_ms_median']:.2f}" if "decode_cpu_ms_median" in r else "n/a"
        print(f"| {r['depth']:,} | {r['decode_ms_median']:.2f} | {cpu} | "
              f"{r['kv_bytes_allocated'] / 2**20:.1f} MiB | {r['kv_budget_at_depth'] / 2**20:.1f} MiB | "
              f"{r['rss_bytes'] / 2**20:.0f} MiB |")
    W, H, L, B, T, R = 640, 400, 70, 50, 30, 20
    if not pts:
        return
    # CPU time per step when measured (shared machines inflate wall time), else wall time
    cpu = [r for r in pts if "decode_cpu_ms_median" in r]
    key, what = ("decode_cpu_ms_median", "CPU ms/token") if cpu else ("decode_ms_median", "ms/token")
    pts = cpu or pts
    xs = [math.log2(r["depth"]) for r in pts]
    ys = [r[key] for r in pts]
    x0, x1 = min(xs) - 0.5, max(xs) + 0.5
    y1 = max(ys) * 1.15 or 1.0
    px = lambda x: L + (x - x0) / (x1 - x0) * (W - L - R)
    py = lambda y: H - B - y / y1 * (H - B - T)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="18" text-anchor="middle">dsv4 decode {what} vs context depth (longctx preset, fast, compact KV)</text>',
           f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>']
    for k in range(5):
        y = y1 * k / 4
        out.append(f'<text x="{L - 6}" y="{py(y) + 4}" text-anchor="end">{y:.1f}</text>')
        out.append(f'<line x1="{L}" y1="{py(y)}" x2="{W - R}" y2="{py(y)}" stroke="#ddd"/>')
    for r, x in zip(pts, xs):
        d = r["depth"]
        lab = f"{d // 1048576}M" if d % 1048576 == 0 else (f"{d // 1024}K" if d % 1024 == 0 else str(d))
        out.append(f'<text x="{px(x)}" y="{H - B + 16}" text-anchor="middle">{lab}</text>')
    out.append('<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="' +
               " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys)) + '"/>')
    for x, y in zip(xs, ys):
        out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="4" fill="#1f77b4"/>')
        out.append(f'<text x="{px(x):.1f}" y="{py(y) - 8:.1f}" text-anchor="middle">{y:.2f}</text>')
    out.append(f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle">context depth (tokens, log scale)</text>')
    out.append(f'<text x="16" y="{H / 2}" transform="rotate(-90 16 {H / 2})" text-anchor="middle">{what}</text>')
    out.append("</svg>")
    open(sys.argv[2], "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
