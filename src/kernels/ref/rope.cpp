// RoPE/YaRN reference (spec 4.2, NOTES.md section 9). The frequency table is evaluated with one
// float32 rounding per tensor operation of the reference's precompute code; transcendentals are
// computed in double and rounded once (correctly rounded in practice).
#include "kernels/ref/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"
#include "quant/quant.h"

namespace dsv4::ref {

namespace {
inline float f32(double x) { return static_cast<float>(x); }
}  // namespace

RopeFreqs rope_freqs(const ModelConfig& cfg, int ratio) {
  const int dims = cfg.rope_head_dim;
  if (dims <= 0 || dims % 2 != 0)
    throw_error("rope_freqs: rope_head_dim must be a positive even number, got ", dims);
  const double base = ratio > 0 ? cfg.compress_rope_theta : cfg.rope_theta;
  if (!(base > 1.0)) throw_error("rope_freqs: rope base (theta) must be > 1, got ", base);
  const bool yarn = ratio > 0 && cfg.original_seq_len > 0;
  const int half = dims / 2;

  const float base32 = f32(base);  // the Python scalar meets a float32 tensor
  const float dims32 = static_cast<float>(dims);
  RopeFreqs out;
  out.inv_freq.resize(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i) {
    const float x = static_cast<float>(2 * i) / dims32;                       // arange(0,D,2)/D
    const float pw = f32(std::pow(static_cast<double>(base32), static_cast<double>(x)));  // B**x
    out.inv_freq[static_cast<size_t>(i)] = 1.0f / pw;                         // 1.0 / B**x
  }
  if (!yarn) return out;

  if (!(cfg.rope_factor > 0.0)) throw_error("rope_freqs: rope_scaling.factor must be > 0, got ", cfg.rope_factor);
  // Correction range in double (Python math), then the ramp in float32.
  auto corr = [&](double rotations) {
    return dims * std::log(static_cast<double>(cfg.original_seq_len) / (rotations * 2.0 * std::numbers::pi)) /
           (2.0 * std::log(base));
  };
  const double low = std::max(std::floor(corr(cfg.beta_fast)), 0.0);
  double high = std::min(std::ceil(corr(cfg.beta_slow)), static_cast<double>(dims - 1));
  if (low == high) high += 0.001;
  const float low32 = f32(low);
  const float span32 = f32(high - low);  // (max - min) is a Python number
  const float factor32 = f32(cfg.rope_factor);
  for (int i = 0; i < half; ++i) {
    float& f = out.inv_freq[static_cast<size_t>(i)];
    const float lin = (static_cast<float>(i) - low32) / span32;
    const float ramp = std::clamp(lin, 0.0f, 1.0f);
    const float smooth = 1.0f - ramp;
    const float a = f / factor32;
    const float b = 1.0f - smooth;
    const float c = a * b;
    const float d = f * smooth;
    f = c + d;
  }
  return out;
}

void rope_cos_sin(const RopeFreqs& f, int64_t p, float* out_cos, float* out_sin) {
  const float pf = static_cast<float>(p);
  for (size_t i = 0; i < f.inv_freq.size(); ++i) {
    const float angle = pf * f.inv_freq[i];
    out_cos[i] = f32(std::cos(static_cast<double>(angle)));
    out_sin[i] = f32(std::sin(static_cast<double>(angle)));
  }
}

void rope_apply(float* x, const float* cos, const float* sin, int npairs, bool inverse) {
  for (int i = 0; i < npairs; ++i) {
    const double a = x[2 * i], b = x[2 * i + 1];
    const double c = cos[i], s = inverse ? -static_cast<double>(sin[i]) : static_cast<double>(sin[i]);
    const float re = f32(a * c - b * s);
    const float im = f32(b * c + a * s);
    x[2 * i] = quant::bf16_round(re);
    x[2 * i + 1] = quant::bf16_round(im);
  }
}

}  // namespace dsv4::ref
