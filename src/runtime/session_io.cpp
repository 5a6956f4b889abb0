// Session persistence (save / load), rewind checkpoints and prefix reuse.
//
// Light state (a checkpoint, and the "state" section of a file): for every block the entry counts,
// the window ring (every slot, compact-encoded), the FP32 compressor states; then the pending MTP
// hidden row. Together with the compressed / indexer rows below the counts it is the complete
// state at a position (spec 5.7). Integers and floats are stored little-endian (host order on the
// supported x86-64 / AArch64 targets).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <list>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "runtime/engine_impl.h"
#include "runtime/kv_codec.h"
#include "runtime/session_file.h"
#include "runtime/session_io.h"

namespace dsv4 {
namespace {

struct Writer {
  std::vector<uint8_t> b;
  template <class T>
  void put(const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
  }
  void put_bytes(const void* p, size_t n) {
    const auto* q = static_cast<const uint8_t*>(p);
    b.insert(b.end(), q, q + n);
  }
  void put_floats(const std::vector<float>& v) { put_bytes(v.data(), v.size() * sizeof(float)); }
};

struct Reader {
  std::span<const uint8_t> b;
  size_t pos = 0;
  const char* what;
  const uint8_t* take(size_t n) {
    if (pos + n > b.size())
      throw_error("session state '", what, "': truncated (need ", n, " bytes at ", pos, " of ", b.size(), ")");
    const uint8_t* p = b.data() + pos;
    pos += n;
    return p;
  }
  template <class T>
  T get() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  void get_floats(std::vector<float>& v) { std::memcpy(v.data(), take(v.size() * sizeof(float)), v.size() * sizeof(float)); }
  void done() const {
    if (pos != b.size()) throw_error("session state '", what, "': ", b.size() - pos, " unexpected trailing bytes");
  }
};

// Rows [first, first+n) of a store in the compact encoding, whatever the store's layout.
void put_rows(Writer& w, const KvRows& s, const ModelConfig& cfg, int64_t first, int64_t n) {
  if (n <= 0) return;
  if (s.layout() == KvLayout::Compact) {
    w.put_bytes(s.entry(first), static_cast<size_t>(n) * s.entry_bytes());
    return;
  }
  std::vector<float> row(static_cast<size_t>(s.width()));
  const size_t eb = s.kind() == KvRowKind::Attention ? KvEntryCodec(s.width(), cfg.rope_head_dim).entry_bytes()
                                                     : IndexKeyCodec(s.width()).entry_bytes();
  std::vector<uint8_t> e(eb);
  for (int64_t i = 0; i < n; ++i) {
    s.read(first + i, row.data());
    if (s.kind() == KvRowKind::Attention) KvEntryCodec(s.width(), cfg.rope_head_dim).encode(row.data(), 1, e.data());
    else IndexKeyCodec(s.width()).encode(row.data(), 1, e.data());
    w.put_bytes(e.data(), eb);
  }
}

void get_rows(Reader& r, KvRows& s, const ModelConfig& cfg, int64_t first, int64_t n) {
  if (n <= 0) return;
  if (first + n > s.capacity())
    throw_error("session state '", r.what, "': ", first + n, " entries do not fit the session's capacity ",
                s.capacity(), " (max_context too small?)");
  std::vector<float> row(static_cast<size_t>(s.width()));
  const bool attn = s.kind() == KvRowKind::Attention;
  const size_t eb = attn ? KvEntryCodec(s.width(), cfg.rope_head_dim).entry_bytes() : IndexKeyCodec(s.width()).entry_bytes();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* e = r.take(eb);
    if (attn) KvEntryCodec(s.width(), cfg.rope_head_dim).decode(e, 1, row.data());
    else IndexKeyCodec(s.width()).decode(e, 1, row.data());
    s.write(first + i, row.data());
  }
}

std::string section_name(const char* prefix, int64_t i, const char* suffix) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%lld%s", prefix, static_cast<long long>(i), suffix);
  return buf;
}

const char* numerics_name(Numerics n) { return n == Numerics::Reference ? "reference" : "fast"; }

uint64_t fnv1a(const void* p, size_t n, uint64_t h = 1469598103934665603ull) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

std::string human_bytes(uint64_t b) {
  char buf[64];
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024.0 && u < 4) v /= 1024.0, ++u;
  std::snprintf(buf, sizeof buf, "%.2f %s", v, units[u]);
  return buf;
}

}  // namespace

void Session::rewind(int64_t) { throw_error("this session does not support rewind"); }
int64_t Session::reuse_prefix(std::span<const int32_t>) { throw_error("this session does not support prefix reuse"); }
void Session::save(const std::string&) const { throw_error("this session cannot be saved"); }
void Session::load(const std::string&) { throw_error("this session cannot be loaded"); }

int64_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return static_cast<int64_t>(i);
}

void check_kv_fits(const ModelConfig& cfg, int64_t context, KvLayout layout, bool with_mtp, uint64_t limit) {
  if (limit == 0) return;
  const KvBudget b = kv_budget(cfg, context, layout, with_mtp);
  if (b.total > limit)
    throw_error("KV cache for a context of ", context, " tokens (", kv_layout_name(layout), " layout) needs ",
                b.total, " bytes (", human_bytes(b.total), "), more than the memory limit of ", limit,
                " bytes (", human_bytes(limit), "); use a shorter context, the compact layout or a higher limit");
}

uint64_t parse_byte_size(const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    throw_error("memory size '", text, "': expected a number with an optional K/M/G/T suffix, e.g. 8G");
  }
  std::string suf = text.substr(used);
  if (!suf.empty() && (suf.back() == 'B' || suf.back() == 'b')) suf.pop_back();
  if (suf.size() == 2 && (suf[1] == 'i' || suf[1] == 'I')) suf.pop_back();
  double mul = 1;
  if (suf.size() == 1) {
    switch (suf[0]) {
      case 'k': case 'K': mul = 1024.0; break;
      case 'm': case 'M': mul = 1024.0 * 1024; break;
      case 'g': case 'G': mul = 1024.0 * 1024 * 1024; break;
      case 't': case 'T': mul = 1024.0 * 1024 * 1024 * 1024; break;
      default: suf = "?";
    }
  }
  if (suf.size() > 1 || suf == "?" || !(v > 0) || !std::isfinite(v))
    throw_error("memory size '", text, "': expected a positive number with an optional K/M/G/T suffix, e.g. 8G");
  return static_cast<uint64_t>(v * mul);
}

std::vector<uint8_t> model_fingerprint(const ModelWeights& w) {
  const ModelConfig& c = w.config;
  std::string d = "dsv4-model-1";
  auto add = [&](const char* k, double v) {
    char buf[96];
    std::snprintf(buf, sizeof buf, ";%s=%.17g", k, v);
    d.append(buf);
  };
  add("vocab", double(c.vocab_size)); add("dim", double(c.dim)); add("layers", c.n_layers);
  add("mtp", c.n_mtp_layers); add("heads", c.n_heads); add("head_dim", c.head_dim);
  add("rope_dim", c.rope_head_dim); add("window", c.window); add("ihd", c.index_head_dim);
  add("ih", c.index_n_heads); add("topk", c.index_topk); add("hc", c.hc_mult);
  add("rope_theta", c.rope_theta); add("crope_theta", c.compress_rope_theta);
  add("rope_factor", c.rope_factor); add("orig_len", double(c.original_seq_len));
  for (int r : c.compress_ratios) add("r", r);
  uint64_t h = fnv1a(d.data(), d.size());
  for (const TensorDecl& t : checkpoint_inventory(c, true)) {
    h = fnv1a(t.name.data(), t.name.size(), h);
    h = fnv1a(dtype_name(t.dtype), std::strlen(dtype_name(t.dtype)), h);
    for (int64_t s : t.shape) h = fnv1a(&s, sizeof s, h);
  }
  // a sample of the weights themselves: first rows of the embedding and the head
  const size_t nb = std::min<size_t>(static_cast<size_t>(w.embed.rows * w.embed.cols), 32768);
  const uint32_t we = crc32(w.embed.w, nb * 2), wh = crc32(w.head.w, std::min<size_t>(static_cast<size_t>(w.head.rows * w.head.cols), 32768) * 2);
  char tail[80];
  std::snprintf(tail, sizeof tail, ";shapes=%016llx;weights=%08x%08x", static_cast<unsigned long long>(h), we, wh);
  d.append(tail);
  return std::vector<uint8_t>(d.begin(), d.end());
}

// ---------------------------------------------------------------------------------------------
// SessionImpl: checkpoints, rewind, prefix reuse, save / load

std::vector<uint8_t> SessionImpl::light_state() const {
  const ModelConfig& cfg = eng_.weights().config;
  Writer w;
  w.put(position());
  w.put(static_cast<int64_t>(state_.blocks.size()));
  for (const BlockState& s : state_.blocks) {
    w.put(s.n_ckv);
    w.put(s.n_ikv);
    put_rows(w, s.window, cfg, 0, s.window.capacity());
    if (s.ratio > 0) w.put_floats(s.comp.kv), w.put_floats(s.comp.score);
    if (s.ratio == 4) w.put_floats(s.icomp.kv), w.put_floats(s.icomp.score);
  }
  w.put(static_cast<uint8_t>(pending_hidden_));
  if (pending_hidden_) w.put_bytes(mtp_in_.data(), static_cast<size_t>(cfg.hc_mult * cfg.dim) * sizeof(float));
  return std::move(w.b);
}

void SessionImpl::restore_light_state(std::span<const uint8_t> bytes) {
  const ModelConfig& cfg = eng_.weights().config;
  Reader r{bytes, 0, "state"};
  const int64_t pos = r.get<int64_t>();
  const int64_t nb = r.get<int64_t>();
  if (nb != static_cast<int64_t>(state_.blocks.size()))
    throw_error("session state: ", nb, " blocks saved, this session has ", state_.blocks.size(),
                " (saved with", nb > cfg.n_layers ? "" : "out", " the MTP block bound)");
  if (pos > opts_.max_context)
    throw_error("session state at position ", pos, " exceeds this session's max_context ", opts_.max_context);
  for (BlockState& s : state_.blocks) {
    s.n_ckv = r.get<int64_t>();
    s.n_ikv = r.get<int64_t>();
    if (s.n_ckv < 0 || s.n_ckv > s.ckv.capacity() || s.n_ikv < 0 || s.n_ikv > s.ikv.capacity())
      throw_error("session state: entry counts ", s.n_ckv, "/", s.n_ikv, " do not fit the session (max_context ",
                  opts_.max_context, ")");
    get_rows(r, s.window, cfg, 0, s.window.capacity());
    if (s.ratio > 0) r.get_floats(s.comp.kv), r.get_floats(s.comp.score);
    if (s.ratio == 4) r.get_floats(s.icomp.kv), r.get_floats(s.icomp.score);
  }
  pending_hidden_ = r.get<uint8_t>() != 0;
  if (pending_hidden_) {
    const size_t flat = static_cast<size_t>(cfg.hc_mult * cfg.dim);
    if (mtp_in_.size() < flat) mtp_in_.resize(flat);  // sized only where the MTP block runs
    std::memcpy(mtp_in_.data(), r.take(flat * sizeof(float)), flat * sizeof(float));
  }
  r.done();
}

uint64_t SessionImpl::checkpoint_bytes() const {
  uint64_t b = 0;
  for (const auto& c : ckpts_) b += c.bytes.size();
  return b;
}

void SessionImpl::maybe_checkpoint() {
  const int64_t p = position();
  if (ckpt_interval_ <= 0 || p == 0 || p % ckpt_interval_ != 0) return;
  if (!ckpts_.empty() && ckpts_.back().pos >= p) return;
  ckpts_.push_back(Checkpoint{p, light_state()});
  while (opts_.max_checkpoints > 0 && static_cast<int>(ckpts_.size()) > opts_.max_checkpoints) {
    ckpt_interval_ *= 2;  // thin out: keep the multiples of the doubled interval
    std::erase_if(ckpts_, [&](const Checkpoint& c) { return c.pos % ckpt_interval_ != 0; });
  }
}

void SessionImpl::rewind(int64_t pos) {
  if (pos < 0 || pos > position())
    throw_error("rewind: position ", pos, " outside [0, ", position(), "] (tokens processed so far)");
  if (pos == position()) return;
  const std::vector<int32_t> toks = tokens_;
  const int64_t keep_prompt = std::min(prompt_len_, pos), keep_width = prompt_width_;
  while (!ckpts_.empty() && ckpts_.back().pos > pos) ckpts_.pop_back();
  std::vector<Checkpoint> kept = std::move(ckpts_);
  const int64_t interval = ckpt_interval_;
  reset();
  ckpts_ = std::move(kept);
  ckpt_interval_ = interval;
  prompt_len_ = pos == 0 ? 0 : keep_prompt;
  prompt_width_ = pos == 0 ? 0 : keep_width;
  int64_t from = 0;
  if (!ckpts_.empty()) {
    restore_light_state(ckpts_.back().bytes);
    from = ckpts_.back().pos;
    tokens_.assign(toks.begin(), toks.begin() + from);
  }
  if (from == pos) return;
  // Recompute [from, pos): the same rows with the same layouts as the first time, so the state is
  // bit for bit the one the session had at pos. MTP callbacks are not repeated.
  replaying_ = true;
  try {
    advance(std::span<const int32_t>(toks.data() + from, static_cast<size_t>(pos - from)), {}, {});
  } catch (...) {
    replaying_ = false;
    throw;
  }
  replaying_ = false;
}

int64_t SessionImpl::reuse_prefix(std::span<const int32_t> prompt) {
  const int64_t lcp = common_prefix(tokens_, prompt);
  const int64_t keep = std::max<int64_t>(0, std::min<int64_t>(lcp, static_cast<int64_t>(prompt.size()) - 1));
  rewind(keep);
  return keep;
}

void SessionImpl::save(const std::string& path) const {
  const ModelConfig& cfg = eng_.weights().config;
  nlohmann::json meta;
  meta["format"] = "dsv4-session";
  meta["kv_encoding"] = "compact";
  meta["position"] = position();
  meta["prompt_len"] = prompt_len_;
  meta["prompt_width"] = prompt_width_;
  meta["numerics"] = numerics_name(eng_.numerics());
  meta["n_blocks"] = state_.blocks.size();
  meta["checkpoint_interval"] = ckpt_interval_;
  std::vector<int64_t> cps;
  for (const auto& c : ckpts_) cps.push_back(c.pos);
  meta["checkpoints"] = cps;
  const std::string meta_text = meta.dump();
  const std::vector<uint8_t> light = light_state();
  std::list<std::vector<uint8_t>> rows;  // stable addresses: the writer references them
  SessionWriter w(model_fingerprint(eng_.weights()));
  w.add("meta", std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(meta_text.data()), meta_text.size()));
  w.add("tokens", std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(tokens_.data()), tokens_.size() * sizeof(int32_t)));
  w.add("state", light);
  for (size_t b = 0; b < state_.blocks.size(); ++b) {
    const BlockState& s = state_.blocks[b];
    if (s.ratio > 0) {
      Writer x;
      put_rows(x, s.ckv, cfg, 0, s.n_ckv);
      rows.push_back(std::move(x.b));
      w.add(section_name("b", static_cast<int64_t>(b), ".ckv"), rows.back());
    }
    if (s.ratio == 4) {
      Writer x;
      put_rows(x, s.ikv, cfg, 0, s.n_ikv);
      rows.push_back(std::move(x.b));
      w.add(section_name("b", static_cast<int64_t>(b), ".ikv"), rows.back());
    }
  }
  for (const auto& c : ckpts_) w.add(section_name("ckpt.", c.pos, ""), c.bytes);
  w.write(path);
}

void SessionImpl::load(const std::string& path) {
  const ModelConfig& cfg = eng_.weights().config;
  const std::vector<uint8_t> fp = model_fingerprint(eng_.weights());
  SessionReader rd(path, fp);
  nlohmann::json meta;
  try {
    const auto m = rd.section("meta");
    meta = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(m.data()), m.size()));
    if (meta.at("format") != "dsv4-session" || meta.at("kv_encoding") != "compact")
      throw_error("not a dsv4 session with compact KV rows");
  } catch (const nlohmann::json::exception& e) {
    throw_error("session file ", path, ": bad meta section (", e.what(), ")");
  }
  const std::string num = meta.at("numerics").get<std::string>();
  if (num != numerics_name(eng_.numerics()))
    throw_error("session file ", path, ": saved with --numerics ", num, ", this engine runs ",
                numerics_name(eng_.numerics()), " (the state depends on the numerics)");
  const int64_t pos = meta.at("position").get<int64_t>();
  if (pos > opts_.max_context)
    throw_error("session file ", path, ": position ", pos, " exceeds this session's max_context ", opts_.max_context);
  if (meta.at("n_blocks").get<size_t>() != state_.blocks.size())
    throw_error("session file ", path, ": saved with ", meta.at("n_blocks").get<size_t>(), " blocks (MTP ",
                meta.at("n_blocks").get<int>() > cfg.n_layers ? "bound" : "not bound", "), this session has ",
                state_.blocks.size());
  const auto tk = rd.section("tokens");
  if (tk.size() != static_cast<size_t>(pos) * sizeof(int32_t))
    throw_error("session file ", path, ": tokens section has ", tk.size(), " bytes, expected ", pos * 4);
  reset();
  try {
    tokens_.resize(static_cast<size_t>(pos));
    std::memcpy(tokens_.data(), tk.data(), tk.size());
    for (int32_t t : tokens_)
      if (t < 0 || t >= cfg.vocab_size) throw_error("session file ", path, ": token id ", t, " out of range");
    restore_light_state(rd.section("state"));
    for (size_t b = 0; b < state_.blocks.size(); ++b) {
      BlockState& s = state_.blocks[b];
      if (s.ratio > 0) {
        const std::string nm = section_name("b", static_cast<int64_t>(b), ".ckv");
        Reader r{rd.section(nm), 0, "ckv"};
        get_rows(r, s.ckv, cfg, 0, s.n_ckv);
        r.done();
      }
      if (s.ratio == 4) {
        const std::string nm = section_name("b", static_cast<int64_t>(b), ".ikv");
        Reader r{rd.section(nm), 0, "ikv"};
        get_rows(r, s.ikv, cfg, 0, s.n_ikv);
        r.done();
      }
    }
    prompt_len_ = meta.at("prompt_len").get<int64_t>();
    prompt_width_ = meta.at("prompt_width").get<int64_t>();
    ckpt_interval_ = meta.at("checkpoint_interval").get<int64_t>();
    for (int64_t c : meta.at("checkpoints").get<std::vector<int64_t>>()) {
      const auto bytes = rd.section(section_name("ckpt.", c, ""));
      ckpts_.push_back(Checkpoint{c, std::vector<uint8_t>(bytes.begin(), bytes.end())});
    }
  } catch (...) {
    reset();  // never leave a half-loaded state behind
    throw;
  }
}

}  // namespace dsv4
