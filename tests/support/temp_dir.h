// Test helpers shared by the unit, crash and mount tests: temp directories and file contents.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace clonefs::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at scope end.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Deterministic pseudo-random bytes (splitmix64 of seed).
std::vector<std::byte> random_bytes(size_t size, uint64_t seed);
void write_file(const std::string& path, const std::vector<std::byte>& bytes);
std::vector<std::byte> read_file(const std::string& path);
// Writes `bytes` to `path` (created or truncated) and fsyncs it; false on any error, with errno
// set (a test whose daemon may be dead checks it).
bool write_and_fsync(const std::string& path, const std::vector<std::byte>& bytes);
// FNV-1a of the whole file ("" if it does not exist): for "nothing was written" checks.
std::string file_digest(const std::string& path);

}  // namespace clonefs::testing
