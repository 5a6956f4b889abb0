// Fast numerics vs the golden data. Bit-exactness is impossible (NOTES.md section 4), so:
//  * teacher-forced per block (immune to error accumulation): each block's relative RMS output
//    error must stay within 3x the layer-local noise floor recorded in meta.json;
//  * end to end: mean relative RMS logit error within 1.75x the noise floor's, top-1 agreement at
//    most 0.1 below the floor's, and no top-1 miss where the golden margin exceeds 2x the floor's
//    max |delta| (the verdicts of compare_golden.py).
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/teacher_forced.h"
#include "tests/golden/golden_run.h"

namespace dsv4::golden {
namespace {

EngineImpl& fast_engine(const std::string& set) {
  static std::map<std::string, std::unique_ptr<EngineImpl>> e;
  auto& p = e[set];
  if (!p) p = load_engine(set, Numerics::Fast);
  return *p;
}

void check_teacher(const std::string& set, const std::string& case_dir) {
  EngineImpl& eng = fast_engine(set);
  const std::string dir = data_dir(set) + "/" + case_dir;
  const auto meta = read_json(dir + "/meta.json");
  const int64_t P = meta["P"].get<int64_t>(), D = meta["D"].get<int64_t>();
  auto toks = meta["tokens"].get<std::vector<int32_t>>();
  toks.resize(static_cast<size_t>(P + D));
  const std::vector<float> hid = read_npy(dir + "/" + meta["teacher"]["file"].get<std::string>()).as_f32();
  const std::vector<float> out = teacher_forced_blocks(eng, toks, P, hid);
  const auto& floors = meta["teacher"]["layer_local_noise_floor"];
  const int64_t per = static_cast<int64_t>(out.size()) / eng.info().n_layers;
  ASSERT_EQ(floors.size(), static_cast<size_t>(eng.info().n_layers));
  for (int l = 0; l < eng.info().n_layers; ++l) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < per; ++i) {
      const double g = hid[static_cast<size_t>((l + 1) * per + i)], e = out[static_cast<size_t>(l * per + i)];
      num += (e - g) * (e - g);
      den += g * g;
    }
    const double rel = std::sqrt(num / den), floor = floors[static_cast<size_t>(l)]["rel_rms_all"].get<double>();
    EXPECT_LE(rel, 3.0 * floor + 1e-6) << set << "/" << case_dir << " block " << l;
  }
}

void check_end_to_end(const std::string& set, const std::string& case_dir) {
  EngineImpl& eng = fast_engine(set);
  for (const Case& c : cases(set)) {
    if (c.dir.find(case_dir) == std::string::npos) continue;
    const auto meta = read_json(c.dir + "/meta.json");
    const CaseRun r = run_case(eng, c);
    const std::vector<float> g = read_npy(c.dir + "/logits.npy").as_f32();
    const int64_t V = eng.info().vocab_size, rows = c.D + 1;
    double rel_sum = 0;
    int agree = 0, confident_miss = 0;
    const auto& floors = meta["noise_floor"];
    double fl_rel = 0, fl_top1_min = 1.0;
    std::vector<double> fl_abs(static_cast<size_t>(rows), 0.0);
    for (const auto& f : floors) {
      const auto rr = f["logits"]["rel_rms"].get<std::vector<double>>();
      const auto ta = f["logits"]["top1_agree"].get<std::vector<bool>>();
      const auto ma = f["logits"]["max_abs"].get<std::vector<double>>();
      double m = 0, t = 0;
      for (double v : rr) m += v;
      for (bool v : ta) t += v ? 1.0 : 0.0;
      fl_rel += m / rr.size();
      fl_top1_min = std::min(fl_top1_min, t / ta.size());
      for (int64_t j = 0; j < rows; ++j) fl_abs[j] = std::max(fl_abs[j], ma[j]);
    }
    fl_rel /= floors.size();
    const auto margins = meta["top1_margin"].get<std::vector<double>>();
    for (int64_t j = 0; j < rows; ++j) {
      double num = 0, den = 0;
      int64_t ae = 0, ag = 0;
      for (int64_t v = 0; v < V; ++v) {
        const double e = r.logits[j * V + v], gg = g[j * V + v];
        num += (e - gg) * (e - gg);
        den += gg * gg;
        if (e > r.logits[j * V + ae]) ae = v;
        if (gg > g[j * V + ag]) ag = v;
      }
      rel_sum += std::sqrt(num / den);
      agree += ae == ag;
      if (ae != ag && margins[j] > 2 * fl_abs[j]) ++confident_miss;
    }
    SCOPED_TRACE(c.dir);
    EXPECT_LE(rel_sum / rows, 1.75 * fl_rel);
    EXPECT_GE(double(agree) / rows, fl_top1_min - 0.1);
    EXPECT_EQ(confident_miss, 0);
  }
}

TEST(GoldenFast, TeacherForcedBlocksWithinNoiseFloorTinyA) { check_teacher("tiny-a", "P064_D032"); }
TEST(GoldenFast, TeacherForcedBlocksWithinNoiseFloorTinyD) { check_teacher("tiny-d", "P130_D016"); }
TEST(GoldenFast, EndToEndLogitsWithinNoiseTinyA) { check_end_to_end("tiny-a", "P200_D032"); }
TEST(GoldenFast, EndToEndLogitsWithinNoiseTinyD) { check_end_to_end("tiny-d", "P300_D016"); }

}  // namespace
}  // namespace dsv4::golden
