// Safetensors checkpoints: one file or several shards, memory-mapped read-only.
// Every header is validated before any tensor is used: header length within
// the file, dtypes known, shapes consistent with byte ranges, and the ranges
// tiling the data section exactly (it starts right after the header, and no
// byte is left uncovered or covered twice), as the format requires.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "dtype.h"

namespace focus {

// A read-only memory map of a whole regular file.
//
// A mapped file must not be modified in place while it is mapped: reading a
// page that a truncation removed raises SIGBUS (the process dies), and bytes
// overwritten in place change under the reader. check_unchanged() compares
// the mapped file's size and modification time (fstat of the descriptor kept
// open, so it is the mapped inode whatever its name now points to) with those
// at load, and throws naming the file when they differ. Replacing the file by
// rename is safe: the mapping keeps the old inode and its bytes.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Throws focus::Error naming the file if it was truncated, grown or
  // rewritten since it was mapped. One fstat: about a microsecond.
  void check_unchanged() const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  int fd_ = -1;
  int64_t mtime_sec_ = 0, mtime_nsec_ = 0;
};

// One tensor of a checkpoint: a view into a mapped file.
struct TensorView {
  std::string name;
  std::string file;         // path of the file that holds it
  std::string dtype_name;   // as written in the header ("F32", "I64", ...)
  bool dtype_supported = false;
  DType dtype = DType::F32; // valid when dtype_supported
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
  std::string shape_str() const;  // "(512, 64)"
};

class Checkpoint {
 public:
  // Opens `dir`: model.safetensors.index.json when present (its weight_map
  // names the shards), else every *.safetensors file in the folder.
  explicit Checkpoint(const std::string& dir);

  const TensorView* find(const std::string& name) const;
  // Throws "missing tensor NAME in DIR".
  const TensorView& get(const std::string& name) const;

  const std::string& dir() const { return dir_; }
  const std::vector<std::string>& files() const { return files_; }
  const std::unordered_map<std::string, TensorView>& tensors() const { return tensors_; }
  size_t total_bytes() const;
  // MappedFile::check_unchanged() on every file.
  void check_unchanged() const;

 private:
  void add_file(const std::string& path);

  std::string dir_;
  std::vector<std::string> files_;
  std::vector<std::unique_ptr<MappedFile>> maps_;
  std::unordered_map<std::string, TensorView> tensors_;
};

// Parses one safetensors buffer (exposed for tests). Tensors are appended to
// `out`; `path` is only used in messages.
void parse_safetensors(const uint8_t* data, size_t size, const std::string& path,
                       std::vector<TensorView>* out);

}  // namespace focus
