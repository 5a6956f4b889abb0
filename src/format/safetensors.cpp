// safetensors reader (mmapped, zero-copy, validated) and streaming writer. Spec section 3.1.
#include "format/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace dsv4 {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct DTypeInfo {
  DType t;
  const char* name;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::BF16, "BF16", 2},   {DType::F32, "F32", 4}, {DType::F8_E4M3, "F8_E4M3", 1},
    {DType::F8_E8M0, "F8_E8M0", 1}, {DType::I8, "I8", 1},   {DType::I32, "I32", 4},
    {DType::I64, "I64", 8},
};

std::string known_dtypes() {
  std::string s;
  for (const auto& d : kDTypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

// numel * elem_size with overflow detection; returns false on overflow or negative dims.
bool checked_bytes(const std::vector<int64_t>& shape, size_t elem, uint64_t* out) {
  uint64_t n = elem;
  for (int64_t d : shape) {
    if (d < 0) return false;
    uint64_t ud = static_cast<uint64_t>(d);
    if (ud != 0 && n > std::numeric_limits<uint64_t>::max() / ud) return false;
    n *= ud;
  }
  *out = n;
  return true;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// Parses one shard's header and appends its tensors (views into `mf`) to `out`.
void parse_shard(const MappedFile& mf, const std::string& fname, std::map<std::string, TensorView>& out) {
  const uint64_t fsize = mf.size();
  if (fsize < 8)
    throw_error(fname, ": file is ", fsize, " bytes, too small for the 8-byte safetensors header length");
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | mf.data()[i];
  if (hlen > fsize - 8)
    throw_error(fname, ": header length ", hlen, " exceeds the file size ", fsize,
                " minus 8 (truncated file or not a safetensors file?)");
  const char* hbeg = reinterpret_cast<const char*>(mf.data() + 8);
  json h;
  try {
    h = json::parse(hbeg, hbeg + hlen);
  } catch (const json::parse_error& e) {
    throw_error(fname, ": header is not valid JSON: ", e.what());
  }
  if (!h.is_object()) throw_error(fname, ": header JSON is not an object");
  const uint64_t data_size = fsize - 8 - hlen;
  const uint8_t* data = mf.data() + 8 + hlen;

  struct Range {
    uint64_t b, e;
    const std::string* name;
  };
  std::vector<Range> ranges;
  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") continue;
    const json& t = it.value();
    auto bad = [&](const auto&... parts) { throw_error(fname, ": tensor ", name, ": ", parts...); };
    if (!t.is_object()) bad("entry is not a JSON object");
    auto dt = t.find("dtype");
    if (dt == t.end() || !dt->is_string()) bad("missing or non-string \"dtype\"");
    TensorView v;
    v.name = name;
    v.file = fname;
    if (!dtype_from_name(dt->get<std::string>(), &v.dtype))
      bad("unknown dtype \"", dt->get<std::string>(), "\" (known: ", known_dtypes(), ")");
    auto sh = t.find("shape");
    if (sh == t.end() || !sh->is_array()) bad("missing or non-array \"shape\"");
    for (const auto& d : *sh) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) bad("shape ", sh->dump(), " has a non-integer or negative dimension");
      v.shape.push_back(d.get<int64_t>());
    }
    auto off = t.find("data_offsets");
    if (off == t.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      bad("\"data_offsets\" must be an array of two non-negative integers");
    const uint64_t b = (*off)[0].get<uint64_t>(), e = (*off)[1].get<uint64_t>();
    if (b > e) bad("data_offsets [", b, ", ", e, "] has begin > end");
    if (e > data_size)
      bad("data_offsets [", b, ", ", e, "] exceed the file's data section of ", data_size, " bytes (truncated shard?)");
    uint64_t need = 0;
    if (!checked_bytes(v.shape, dtype_size(v.dtype), &need)) bad("shape ", shape_str(v.shape), " overflows");
    if (e - b != need)
      bad("data_offsets [", b, ", ", e, "] span ", e - b, " bytes but shape ", shape_str(v.shape), " x ",
          dtype_name(v.dtype), " needs ", need);
    v.data = data + b;
    v.nbytes = static_cast<size_t>(need);
    if (out.count(name)) bad("appears twice (also in ", out.at(name).file, ")");
    auto ins = out.emplace(name, std::move(v));
    ranges.push_back({b, e, &ins.first->first});
  }
  std::sort(ranges.begin(), ranges.end(), [](const Range& x, const Range& y) { return x.b < y.b || (x.b == y.b && x.e < y.e); });
  for (size_t i = 1; i < ranges.size(); ++i) {
    // Empty tensors occupy no bytes and cannot overlap anything.
    if (ranges[i].b == ranges[i].e || ranges[i - 1].b == ranges[i - 1].e) continue;
    if (ranges[i].b < ranges[i - 1].e)
      throw_error(fname, ": tensor ", *ranges[i].name, ": data_offsets [", ranges[i].b, ", ", ranges[i].e,
                  "] overlap tensor ", *ranges[i - 1].name, " [", ranges[i - 1].b, ", ", ranges[i - 1].e, "]");
  }
}

}  // namespace

const char* dtype_name(DType t) {
  for (const auto& d : kDTypes)
    if (d.t == t) return d.name;
  return "?";
}

size_t dtype_size(DType t) {
  for (const auto& d : kDTypes)
    if (d.t == t) return d.size;
  return 0;
}

bool dtype_from_name(const std::string& s, DType* out) {
  for (const auto& d : kDTypes)
    if (s == d.name) {
      *out = d.t;
      return true;
    }
  return false;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

TensorStore TensorStore::open_dir(const std::string& dir) {
  TensorStore st;
  const fs::path root(dir);
  const fs::path index = root / "model.safetensors.index.json";
  const fs::path single = root / "model.safetensors";
  if (fs::exists(index)) {
    const std::string iname = index.string();
    MappedFile im(iname);
    json j;
    try {
      const char* p = reinterpret_cast<const char*>(im.data());
      j = json::parse(p, p + im.size());
    } catch (const json::parse_error& e) {
      throw_error(iname, ": not valid JSON: ", e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw_error(iname, ": missing \"weight_map\" object");
    // shard -> names the index assigns to it
    std::map<std::string, std::vector<std::string>> by_shard;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) throw_error(iname, ": weight_map entry for tensor ", it.key(), " is not a string");
      const std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
        throw_error(iname, ": tensor ", it.key(), ": shard name \"", shard, "\" is not a plain file name");
      by_shard[shard].push_back(it.key());
    }
    if (by_shard.empty()) throw_error(iname, ": weight_map is empty");
    for (const auto& [shard, names] : by_shard) {
      const fs::path sp = root / shard;
      if (!fs::exists(sp))
        throw_error(iname, ": names shard ", shard, " (for tensor ", names.front(), " and ", names.size() - 1,
                    " more) which does not exist in ", dir);
      st.files_.push_back(std::make_unique<MappedFile>(sp.string()));
      parse_shard(*st.files_.back(), shard, st.tensors_);
      for (const auto& n : names) {
        auto f = st.tensors_.find(n);
        if (f == st.tensors_.end() || f->second.file != shard)
          throw_error(shard, ": tensor ", n, " is listed in model.safetensors.index.json for this shard but its header lacks it");
      }
    }
  } else if (fs::exists(single)) {
    st.files_.push_back(std::make_unique<MappedFile>(single.string()));
    parse_shard(*st.files_.back(), "model.safetensors", st.tensors_);
  } else {
    throw_error(dir, ": neither model.safetensors.index.json nor model.safetensors found");
  }
  return st;
}

const TensorView* TensorStore::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

void TensorStore::populate(const std::function<void(uint64_t, uint64_t)>& progress) const {
  uint64_t total = 0, done = 0;
  for (const auto& f : files_) total += f->size();
  for (const auto& f : files_) {
    f->populate();
    done += f->size();
    if (progress) progress(done, total);
  }
}

void TensorStore::Unmap::operator()(uint8_t* p) const { unmap_huge(p, bytes); }

void TensorStore::read_private(const std::function<void(uint64_t, uint64_t)>& progress) {
  if (is_private()) return;
  const uint64_t total = file_bytes();
  auto round_up = [](uint64_t n) { return (n + kPrivateAlign - 1) / kPrivateAlign * kPrivateAlign; };
  // Each shard's views in file order, each given the next aligned place in the shard's arena.
  struct Place {
    TensorView* view;
    uint64_t file_off, at;
  };
  std::vector<std::vector<Place>> places(files_.size());
  for (auto& [name, v] : tensors_) {
    size_t f = 0;
    while (f < files_.size() && !(v.data >= files_[f]->data() && v.data <= files_[f]->data() + files_[f]->size())) ++f;
    if (f == files_.size()) throw_error(v.file, ": tensor ", name, ": its data lies in no open shard");
    places[f].push_back({&v, static_cast<uint64_t>(v.data - files_[f]->data()), 0});
  }
  std::vector<std::unique_ptr<uint8_t, Unmap>> arenas;
  uint64_t done = 0;
  for (size_t f = 0; f < files_.size(); ++f) {
    const MappedFile& mf = *files_[f];
    auto& ps = places[f];
    std::sort(ps.begin(), ps.end(), [](const Place& a, const Place& b) { return a.file_off < b.file_off; });
    uint64_t size = 0;
    for (Place& p : ps) {
      p.at = size;
      size += round_up(p.view->nbytes);
    }
    const size_t bytes = std::max<size_t>(size, kPrivateAlign);
    std::unique_ptr<uint8_t, Unmap> arena(static_cast<uint8_t*>(map_huge(bytes)), Unmap{bytes});
    if (!arena) throw_error(mf.path(), ": cannot allocate ", bytes, " bytes of private memory for the weights");
    struct File {  // closed however the reading ends (a progress callback may throw too)
      int fd;
      ~File() {
        if (fd >= 0) ::close(fd);
      }
    } file{::open(mf.path().c_str(), O_RDONLY | O_CLOEXEC)};
    const int fd = file.fd;
    if (fd < 0) throw_error(mf.path(), ": cannot open: ", std::strerror(errno));
    auto fail = [&](const char* what, int e) { throw_error(mf.path(), ": ", what, ": ", std::strerror(e)); };
    constexpr uint64_t kPiece = uint64_t{64} << 20;  // progress and page-cache release granularity
    uint64_t released = 0;
    for (const Place& p : ps) {
      uint8_t* dst = arena.get() + p.at;
      for (uint64_t got = 0; got < p.view->nbytes;) {
        const size_t want = static_cast<size_t>(std::min(kPiece, p.view->nbytes - got));
        const ssize_t n = ::pread(fd, dst + got, want, static_cast<off_t>(p.file_off + got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail("cannot read", errno);
        if (n == 0) fail("file shrank while being read", EIO);
        got += static_cast<uint64_t>(n);
        done += static_cast<uint64_t>(n);
        const uint64_t end = p.file_off + got;
        if (end >= released + kPiece) {
          ::posix_fadvise(fd, static_cast<off_t>(released), static_cast<off_t>(end - released), POSIX_FADV_DONTNEED);
          released = end;
          if (progress) progress(std::min(done, total), total);
        }
      }
    }
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::mprotect(arena.get(), bytes, PROT_READ);
    arenas.push_back(std::move(arena));
  }
  // Every shard read: only now do the views move.
  for (size_t f = 0; f < files_.size(); ++f)
    for (const Place& p : places[f]) p.view->data = arenas[f].get() + p.at;
  arenas_ = std::move(arenas);
  if (progress) progress(total, total);
}

uint64_t TensorStore::file_bytes() const {
  uint64_t n = 0;
  for (const auto& f : files_) n += f->size();
  return n;
}

uint64_t TensorStore::total_bytes() const {
  uint64_t n = 0;
  for (const auto& [k, v] : tensors_) n += v.nbytes;
  return n;
}

// ---- writer ------------------------------------------------------------------------------

size_t TensorDecl::nbytes() const {
  uint64_t n = 0;
  if (!checked_bytes(shape, dtype_size(dtype), &n)) throw_error("tensor ", name, ": shape ", shape_str(shape), " overflows");
  return static_cast<size_t>(n);
}

SafetensorsWriter::SafetensorsWriter(const std::string& path, std::vector<TensorDecl> tensors,
                                     const std::map<std::string, std::string>& metadata)
    : path_(path), tensors_(std::move(tensors)) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::set<std::string> seen;
  for (const auto& t : tensors_) {
    if (!seen.insert(t.name).second) throw_error(path, ": tensor ", t.name, " declared twice");
    const uint64_t n = t.nbytes();
    begin_.push_back(data_size_);
    h[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {data_size_, data_size_ + n}}};
    data_size_ += n;
  }
  std::string hs = h.dump();
  while ((8 + hs.size()) % 8 != 0) hs.push_back(' ');
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw_error(path, ": cannot create: ", std::strerror(errno));
  file_ = f;
  std::setvbuf(f, nullptr, _IOFBF, 1 << 20);  // small tensors coalesce into 1 MiB writes
  uint8_t len[8];
  uint64_t hl = hs.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(hl >> (8 * i));
  if (std::fwrite(len, 1, 8, f) != 8 || std::fwrite(hs.data(), 1, hs.size(), f) != hs.size())
    throw_error(path, ": write error: ", std::strerror(errno));
  while (current_ < tensors_.size() && tensors_[current_].nbytes() == 0) ++current_;
}

SafetensorsWriter::~SafetensorsWriter() {
  if (file_) std::fclose(static_cast<FILE*>(file_));
}

void SafetensorsWriter::write(const void* data, size_t n) {
  if (!file_) throw_error(path_, ": write after finish()");
  if (written_ + n > data_size_)
    throw_error(path_, ": ", written_ + n - data_size_, " bytes more written than the declared tensors hold");
  if (n && std::fwrite(data, 1, n, static_cast<FILE*>(file_)) != n)
    throw_error(path_, ": write error: ", std::strerror(errno));
  written_ += n;
  while (current_ < tensors_.size() && written_ >= begin_[current_] + tensors_[current_].nbytes()) ++current_;
}

void SafetensorsWriter::finish() {
  if (!file_) return;
  if (written_ != data_size_) {
    const std::string who = current_ < tensors_.size() ? tensors_[current_].name : "?";
    throw_error(path_, ": finish() after ", written_, " of ", data_size_, " data bytes (tensor ", who, " incomplete)");
  }
  FILE* f = static_cast<FILE*>(file_);
  file_ = nullptr;
  const bool ok = std::fflush(f) == 0;
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) throw_error(path_, ": write error on close: ", std::strerror(errno));
}

}  // namespace dsv4
