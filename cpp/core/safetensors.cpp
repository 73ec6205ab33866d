#include "safetensors.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "error.h"
#include "json.h"

namespace focus {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  // O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever; it
  // changes nothing for a regular file.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw Error(str(path, ": cannot open (", std::strerror(errno), ")"));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw Error(str(path, ": cannot stat (", std::strerror(e), ")"));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(str(path, ": not a regular file (a FIFO, device or socket cannot be read as a model file)"));
  }
  size_ = size_t(st.st_size);
  mtime_sec_ = int64_t(st.st_mtim.tv_sec);
  mtime_nsec_ = int64_t(st.st_mtim.tv_nsec);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error(str(path, ": cannot map (", std::strerror(e), ")"));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  fd_ = fd;  // kept open for check_unchanged()
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
}

void MappedFile::check_unchanged() const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) throw Error(str(path_, ": cannot stat (", std::strerror(errno), ")"));
  const bool same_size = uint64_t(st.st_size) == uint64_t(size_);
  if (same_size && int64_t(st.st_mtim.tv_sec) == mtime_sec_ && int64_t(st.st_mtim.tv_nsec) == mtime_nsec_) return;
  throw Error(str(path_, ": the file was ",
                  same_size ? "rewritten" : (uint64_t(st.st_size) < uint64_t(size_) ? "truncated" : "grown"),
                  " in place after the model was loaded (", size_, " bytes then, ", uint64_t(st.st_size),
                  " now); load the model again. A checkpoint must not be modified while a model uses it: "
                  "replace it by writing a new file and renaming it over the old one"));
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::shape_str() const {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

namespace {

// Element sizes of every dtype the safetensors format defines; 0 = unknown.
size_t safetensors_elem_bits(const std::string& t) {
  static const std::pair<const char*, size_t> table[] = {
      {"BOOL", 8}, {"U8", 8}, {"I8", 8}, {"F8_E5M2", 8}, {"F8_E4M3", 8}, {"F8_E8M0", 8},
      {"I16", 16}, {"U16", 16}, {"F16", 16}, {"BF16", 16}, {"I32", 32}, {"U32", 32},
      {"F32", 32}, {"F64", 64}, {"I64", 64}, {"U64", 64}};
  for (const auto& e : table)
    if (t == e.first) return e.second;
  return 0;
}

}  // namespace

void parse_safetensors(const uint8_t* data, size_t size, const std::string& path,
                       std::vector<TensorView>* out) {
  if (size < 8) throw Error(str(path, ": truncated safetensors file (", size, " bytes, the 8-byte header length is missing)"));
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | data[i];  // little endian
  if (header_len > size - 8)
    throw Error(str(path, ": safetensors header length ", header_len, " runs past the end of the file (",
                    size, " bytes)"));
  // The format's own reader refuses headers over 100 MB; so do we.
  if (header_len > 100u * 1000 * 1000)
    throw Error(str(path, ": safetensors header of ", header_len, " bytes is larger than the 100 MB limit"));
  std::string header(reinterpret_cast<const char*>(data + 8), size_t(header_len));
  Json root = Json::parse(header, path + " (safetensors header)");
  if (!root.is_object()) throw Error(str(path, ": safetensors header is not a JSON object"));
  const uint8_t* base = data + 8 + header_len;
  const size_t data_size = size - 8 - size_t(header_len);

  struct Range {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Range> ranges;
  for (const auto& [name, info] : root.members()) {
    if (name == "__metadata__") continue;
    std::string where = str(path, ": tensor '", name, "'");
    if (!info.is_object()) throw Error(where + ": entry is not an object");
    const Json* dt = info.get("dtype");
    const Json* sh = info.get("shape");
    const Json* off = info.get("data_offsets");
    if (!dt || !dt->is_string()) throw Error(where + ": missing or invalid 'dtype'");
    if (!sh || !sh->is_array()) throw Error(where + ": missing or invalid 'shape'");
    if (!off || !off->is_array() || off->items().size() != 2) throw Error(where + ": missing or invalid 'data_offsets'");
    TensorView t;
    t.name = name;
    t.file = path;
    t.dtype_name = dt->as_string();
    size_t bits = safetensors_elem_bits(t.dtype_name);
    if (bits == 0) throw Error(str(where, ": unknown dtype '", t.dtype_name, "'"));
    t.dtype_supported = dtype_from_name(t.dtype_name, &t.dtype);
    uint64_t numel = 1;
    for (const Json& d : sh->items()) {
      int64_t v;
      if (!d.as_int64(&v) || v < 0) throw Error(where + ": shape holds a value that is not a non-negative integer");
      if (v > 0 && numel > (uint64_t(1) << 62) / uint64_t(v)) throw Error(where + ": shape is too large");
      numel *= uint64_t(v);
      t.shape.push_back(v);
    }
    int64_t b, e;
    if (!off->items()[0].as_int64(&b) || !off->items()[1].as_int64(&e) || b < 0 || e < b)
      throw Error(where + ": data_offsets must be two non-negative integers [begin, end] with begin <= end");
    if (uint64_t(e) > data_size)
      throw Error(str(where, ": data_offsets [", b, ", ", e, "] are out of range (the data section has ", data_size,
                      " bytes)"));
    // numel * bits would overflow only for tensors far larger than any file.
    if (numel > (uint64_t(data_size) * 8) / bits + 1)
      throw Error(str(where, ": shape ", t.shape_str(), " needs more bytes than the data section has (", data_size, ")"));
    uint64_t expect = numel * bits / 8;
    if (uint64_t(e - b) != expect)
      throw Error(str(where, ": data_offsets span ", e - b, " bytes but dtype ", t.dtype_name, " and shape ",
                      t.shape_str(), " need ", expect));
    t.data = base + b;
    t.nbytes = size_t(e - b);
    ranges.push_back({uint64_t(b), uint64_t(e), out->size()});
    out->push_back(std::move(t));
  }
  // The format requires the ranges to tile the data section: it starts right
  // after the header (the header is padded with spaces, inside its length, to
  // align it) and every byte belongs to exactly one tensor. A header length
  // a few bytes short of the JSON's padded end still parses, but shifts every
  // tensor: the uncovered bytes at the end give it away.
  std::sort(ranges.begin(), ranges.end(), [](const Range& x, const Range& y) {
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  });
  // Overlaps first (the worse corruption), then gaps.
  size_t far = SIZE_MAX;  // the range with the furthest end so far
  for (size_t i = 0; i < ranges.size(); ++i) {
    const Range& r = ranges[i];
    if (far != SIZE_MAX && r.begin < ranges[far].end)
      throw Error(str(path, ": tensors '", (*out)[ranges[far].index].name, "' and '", (*out)[r.index].name,
                      "' have overlapping data_offsets"));
    if (far == SIZE_MAX || r.end > ranges[far].end) far = i;
  }
  uint64_t covered = 0;  // [0, covered) is tiled so far
  for (const Range& r : ranges) {
    if (r.begin > covered)
      throw Error(str(path, ": bytes [", covered, ", ", r.begin, ") of the data section, before tensor '",
                      (*out)[r.index].name, "', belong to no tensor (the format allows no gaps)"));
    covered = r.end;
  }
  if (covered != data_size)
    throw Error(str(path, ": the data section has ", data_size, " bytes but its tensors cover ", covered,
                    " (bytes [", covered, ", ", data_size,
                    ") belong to no tensor: wrong header length, or trailing bytes; the data must start right "
                    "after the header and end with the last tensor)"));
}

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) throw Error(str(dir, ": no such model folder"));
  if (!S_ISDIR(st.st_mode)) throw Error(str(dir, ": not a folder (expected a folder with config.json and *.safetensors)"));
  std::string index_path = dir + "/model.safetensors.index.json";
  if (::stat(index_path.c_str(), &st) == 0) {
    Json idx = Json::parse(read_text_file(index_path), index_path);
    const Json* wm = idx.get("weight_map");
    if (!wm || !wm->is_object()) throw Error(index_path + ": missing or invalid 'weight_map'");
    std::vector<std::string> shards;
    for (const auto& [name, file] : wm->members()) {
      if (!file.is_string()) throw Error(str(index_path, ": weight_map entry '", name, "' is not a file name"));
      const std::string& f = file.as_string();
      if (f.find('/') != std::string::npos || f == ".." || f.empty())
        throw Error(str(index_path, ": weight_map entry '", name, "' names '", f, "', which is not a file in the folder"));
      if (std::find(shards.begin(), shards.end(), f) == shards.end()) shards.push_back(f);
    }
    for (const auto& f : shards) add_file(dir + "/" + f);
    for (const auto& [name, file] : wm->members()) {
      auto it = tensors_.find(name);
      if (it == tensors_.end())
        throw Error(str(index_path, ": tensor '", name, "' is listed in weight_map but is not in ", file.as_string()));
      if (it->second.file != dir + "/" + file.as_string())
        throw Error(str(index_path, ": tensor '", name, "' is listed in ", file.as_string(), " but found in ",
                        it->second.file));
    }
  } else {
    DIR* d = ::opendir(dir.c_str());
    if (!d) throw Error(str(dir, ": cannot list folder (", std::strerror(errno), ")"));
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 12 && n.compare(n.size() - 12, 12, ".safetensors") == 0) names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    if (names.empty()) throw Error(str(dir, ": no *.safetensors file in the folder"));
    for (const auto& n : names) add_file(dir + "/" + n);
  }
}

void Checkpoint::add_file(const std::string& path) {
  auto m = std::make_unique<MappedFile>(path);
  std::vector<TensorView> views;
  parse_safetensors(m->data(), m->size(), path, &views);
  for (auto& v : views) {
    if (tensors_.count(v.name))
      throw Error(str(path, ": tensor '", v.name, "' is also in ", tensors_.at(v.name).file));
    std::string n = v.name;
    tensors_.emplace(n, std::move(v));
  }
  files_.push_back(path);
  maps_.push_back(std::move(m));
}

const TensorView* Checkpoint::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const TensorView& Checkpoint::get(const std::string& name) const {
  const TensorView* t = find(name);
  if (!t) throw Error(str(dir_, ": missing tensor '", name, "'"));
  return *t;
}

void Checkpoint::check_unchanged() const {
  for (const auto& m : maps_) m->check_unchanged();
}

size_t Checkpoint::total_bytes() const {
  size_t n = 0;
  for (const auto& m : maps_) n += m->size();
  return n;
}

}  // namespace focus
