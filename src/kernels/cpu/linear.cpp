// Drivers of the fast linear layers (linear.h): activation preparation, the static split of output
// rows over the thread pool, and the panel loop (decode 4 weight rows into a BF16 panel held in L1,
// then run every activation row of the current M tile against it).
#include "kernels/cpu/linear.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/formats.h"
#include "kernels/cpu/linear_kernels.h"

namespace dsv4::cpu {

const PanelKernels& panel_kernels(Isa isa) {
  static const PanelKernels kScalar{scalar::decode_fp8, scalar::decode_fp4, scalar::dot_bf16,
                                    scalar::dot_bf16w_f32};
  static const PanelKernels kAvx512{avx512::decode_fp8, avx512::decode_fp4, avx512::dot_bf16,
                                    avx512::dot_bf16w_f32};
  return isa == Isa::Avx512Bf16 ? kAvx512 : kScalar;
}

void act_quant_dequant(const float* x, int64_t k, float* out) {
  for (int64_t b = 0; b < k; b += 128) {
    const int64_t e = std::min(k, b + 128);
    float amax = 0.0f;
    for (int64_t j = b; j < e; ++j) amax = std::max(amax, std::fabs(x[j]));
    amax = std::max(amax, 1e-4f);
    const float t = amax * (1.0f / 448.0f);
    const float s = std::ldexp(1.0f, ceil_log2_f32(t));
    for (int64_t j = b; j < e; ++j) {
      const float q = std::clamp(x[j] / s, -448.0f, 448.0f);
      out[j] = round_to_e4m3_grid(q) * s;
    }
  }
}

namespace {

// Activation rows of the current M tile stay in L2 while every panel of the thread's output
// range passes over them; each panel (4 rows x K BF16, 32 KiB at K = 4096) is re-decoded per tile.
constexpr int64_t kMTile = 64;

template <class T>
T* grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

thread_local std::vector<uint16_t> t_act;    // prepared activations (the calling thread)
thread_local std::vector<uint16_t> t_panel;  // one panel per thread
thread_local std::vector<float> t_row;       // one quantised activation row per thread

int64_t round_up32(int64_t k) { return (k + 31) / 32 * 32; }

// Writes row i of `out` (stride ldo >= round_up32(k)) as BF16 in the panel order of `order`,
// after the exact act_quant rounding when `quant`; zero padding past k.
void prepare_row(const float* src, int64_t k, PanelOrder order, bool quant, uint16_t* out,
                 int64_t ldo) {
  const float* v = src;
  if (quant) {
    float* tmp = grow(t_row, static_cast<size_t>(k));
    act_quant_dequant(src, k, tmp);
    v = tmp;
  }
  const int64_t period = order == PanelOrder::Fp4 ? 128 : 64;
  std::array<int16_t, 128> perm{};
  for (int64_t q = 0; q < period; ++q)
    perm[q] = static_cast<int16_t>(panel_position_to_k(order, q));
  for (int64_t p0 = 0; p0 < ldo; p0 += period) {
    for (int64_t q = 0; q < period && p0 + q < ldo; ++q) {
      const int64_t kk = p0 + perm[q];
      out[p0 + q] = kk < k ? f32_to_bf16_bits(v[kk]) : 0;
    }
  }
}

struct PrepRows {
  const float* x;
  int64_t ldx;
  const int32_t* rows;
};

void prepare_rows(ThreadPool* pool, const PrepRows& in, int64_t m, int64_t k, PanelOrder order,
                  bool quant, uint16_t* out, int64_t ldo) {
  const int64_t grain = 4;
  auto body = [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t src = in.rows ? in.rows[i] : i;
      prepare_row(in.x + src * in.ldx, k, order, quant, out + i * ldo, ldo);
    }
  };
  if (m >= 2 * grain) {
    parallel_for(pool, m, grain, body);
  } else {
    body(0, m, 0);
  }
}

void check_rows(const char* op, int64_t m, const void* x, const void* y) {
  if (m < 0) throw_error(op, ": negative row count ", m);
  if (m > 0 && (x == nullptr || y == nullptr)) throw_error(op, ": null activation or output rows");
}

void check_quant_k(const char* op, int64_t n, int64_t k, const void* w, const void* s) {
  if (k <= 0 || k % 128 != 0) throw_error(op, ": k = ", k, " is not a positive multiple of 128");
  if (n <= 0) throw_error(op, ": n = ", n, " must be positive");
  if (w == nullptr || s == nullptr) throw_error(op, ": null weight or scale pointer");
}

}  // namespace

void linear_fp8(const Fp8Weight& w, const Rows& x, const OutRows& y, ThreadPool* pool,
                bool quantize_act) {
  check_quant_k("linear_fp8", w.n, w.k, w.codes, w.scales);
  check_rows("linear_fp8", x.m, x.data, y.data);
  if (x.m == 0) return;
  const PanelKernels& kern = panel_kernels(active_isa());
  const int64_t k = w.k, m = x.m, kblocks = k / 128;
  uint16_t* act = grow(t_act, static_cast<size_t>(m * k));
  prepare_rows(pool, {x.data, x.ld, nullptr}, m, k, PanelOrder::Fp8, quantize_act, act, k);
  parallel_for(pool, w.n, kPanelRows, [&](int64_t b, int64_t e, int) {
    uint16_t* panel = grow(t_panel, static_cast<size_t>(kPanelRows * k));
    for (int64_t m0 = 0; m0 < m; m0 += kMTile) {
      const int64_t mt = std::min(kMTile, m - m0);
      for (int64_t n0 = b; n0 < e; n0 += kPanelRows) {
        const int nr = static_cast<int>(std::min<int64_t>(kPanelRows, e - n0));
        kern.decode_fp8(w.codes + n0 * k, k, w.scales + (n0 / 128) * kblocks, nr, k, panel, k);
        kern.dot_bf16(panel, k, nr, act + m0 * k, k, mt, k, y.data + m0 * y.ld + n0, y.ld);
      }
    }
  });
}

void linear_fp4_grouped(std::span<const Fp4Group> groups, ThreadPool* pool, bool quantize_act) {
  const PanelKernels& kern = panel_kernels(active_isa());
  // Offsets of each group's prepared rows and of its output-row units (kPanelRows rows each).
  int64_t total_rows = 0, total_units = 0, act_elems = 0;
  for (const Fp4Group& g : groups) {
    check_quant_k("linear_fp4", g.w.n, g.w.k, g.w.packed, g.w.scales);
    check_rows("linear_fp4", g.count, g.x, g.y.data);
    if (g.count == 0) continue;
    total_rows += g.count;
    total_units += (g.w.n + kPanelRows - 1) / kPanelRows;
    act_elems += g.count * g.w.k;
  }
  if (total_rows == 0) return;
  uint16_t* act = grow(t_act, static_cast<size_t>(act_elems));
  {
    int64_t off = 0;
    for (const Fp4Group& g : groups) {
      if (g.count == 0) continue;
      prepare_rows(pool, {g.x, g.ldx, g.rows}, g.count, g.w.k, PanelOrder::Fp4, quantize_act,
                   act + off, g.w.k);
      off += g.count * g.w.k;
    }
  }
  parallel_for(pool, total_units, 1, [&](int64_t ub, int64_t ue, int) {
    int64_t unit0 = 0, off = 0;
    for (const Fp4Group& g : groups) {
      if (g.count == 0) continue;
      const int64_t units = (g.w.n + kPanelRows - 1) / kPanelRows, k = g.w.k;
      const int64_t lo = std::max(ub, unit0), hi = std::min(ue, unit0 + units);
      if (lo < hi) {
        uint16_t* panel = grow(t_panel, static_cast<size_t>(kPanelRows * k));
        const uint16_t* a = act + off;
        for (int64_t m0 = 0; m0 < g.count; m0 += kMTile) {
          const int64_t mt = std::min(kMTile, g.count - m0);
          for (int64_t u = lo; u < hi; ++u) {
            const int64_t n0 = (u - unit0) * kPanelRows;
            const int nr = static_cast<int>(std::min<int64_t>(kPanelRows, g.w.n - n0));
            kern.decode_fp4(g.w.packed + n0 * (k / 2), k / 2, g.w.scales + n0 * (k / 32), k / 32,
                            nr, k, panel, k);
            kern.dot_bf16(panel, k, nr, a + m0 * k, k, mt, k, g.y.data + m0 * g.y.ld + n0,
                          g.y.ld);
          }
        }
      }
      unit0 += units;
      off += g.count * k;
    }
  });
}

void linear_fp4(const Fp4Weight& w, const Rows& x, const OutRows& y, ThreadPool* pool,
                bool quantize_act) {
  const Fp4Group g{w, x.data, x.ld, nullptr, x.m, y};
  linear_fp4_grouped(std::span<const Fp4Group>(&g, 1), pool, quantize_act);
}

void linear_bf16(const Bf16Weight& w, const Rows& x, const OutRows& y, ThreadPool* pool,
                 Bf16Act act_mode) {
  if (w.n <= 0 || w.k <= 0) throw_error("linear_bf16: bad shape [", w.n, ", ", w.k, "]");
  if (w.bits == nullptr) throw_error("linear_bf16: null weight pointer");
  check_rows("linear_bf16", x.m, x.data, y.data);
  if (x.m == 0) return;
  const PanelKernels& kern = panel_kernels(active_isa());
  const int64_t k = w.k, m = x.m;
  if (act_mode == Bf16Act::Float32) {
    parallel_for(pool, w.n, kPanelRows, [&](int64_t b, int64_t e, int) {
      for (int64_t m0 = 0; m0 < m; m0 += kMTile) {
        const int64_t mt = std::min(kMTile, m - m0);
        for (int64_t n0 = b; n0 < e; n0 += kPanelRows) {
          const int nr = static_cast<int>(std::min<int64_t>(kPanelRows, e - n0));
          kern.dot_bf16w_f32(w.bits + n0 * k, k, nr, x.data + m0 * x.ld, x.ld, mt, k,
                             y.data + m0 * y.ld + n0, y.ld);
        }
      }
    });
    return;
  }
  const int64_t kp = round_up32(k);
  uint16_t* act = grow(t_act, static_cast<size_t>(m * kp));
  prepare_rows(pool, {x.data, x.ld, nullptr}, m, k, PanelOrder::Natural, false, act, kp);
  parallel_for(pool, w.n, kPanelRows, [&](int64_t b, int64_t e, int) {
    uint16_t* panel = grow(t_panel, static_cast<size_t>(kPanelRows * kp));
    for (int64_t m0 = 0; m0 < m; m0 += kMTile) {
      const int64_t mt = std::min(kMTile, m - m0);
      for (int64_t n0 = b; n0 < e; n0 += kPanelRows) {
        const int nr = static_cast<int>(std::min<int64_t>(kPanelRows, e - n0));
        for (int r = 0; r < kPanelRows; ++r) {
          uint16_t* dst = panel + r * kp;
          if (r < nr) {
            std::memcpy(dst, w.bits + (n0 + r) * k, static_cast<size_t>(k) * 2);
            std::fill(dst + k, dst + kp, uint16_t{0});
          } else {
            std::fill(dst, dst + kp, uint16_t{0});
          }
        }
        kern.dot_bf16(panel, kp, nr, act + m0 * kp, kp, mt, kp, y.data + m0 * y.ld + n0, y.ld);
      }
    }
  });
}

}  // namespace dsv4::cpu
