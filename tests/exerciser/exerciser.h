// Runs operations on the file under test and checks every byte read against the model; the
// first error or wrong byte ends the run with a description of what went wrong.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "model.h"
#include "operation.h"

namespace clonefs::exerciser {

class Exerciser {
 public:
  // `max_length`: the longest operation it will be given.
  Exerciser(std::string path, Model& model, bool direct, uint64_t max_length);
  ~Exerciser();
  Exerciser(const Exerciser&) = delete;
  Exerciser& operator=(const Exerciser&) = delete;

  // "" when the file opened (and opened with O_DIRECT if asked), else why not.
  const std::string& open_error() const { return open_error_; }
  // Runs `op`; "" on success, else what failed (the operation, the errno or the wrong bytes).
  std::string run(const Operation& op);
  // Reads the whole file back and compares it with the model ("" when they are equal).
  std::string check_whole_file();

  // Operations run, by kind (indexed by OpKind).
  const std::array<uint64_t, kOpKinds>& counts() const { return counts_; }

 private:
  std::string open_files();
  void close_files();
  std::string read(const Operation& op);
  std::string write(const Operation& op);
  std::string map_read(const Operation& op);
  std::string map_write(const Operation& op);
  std::string fallocate(const Operation& op, int mode);
  std::string copy_range(const Operation& op);
  std::string sync(const Operation& op, bool data_only);
  std::string compare(const Operation& op, const uint8_t* found);
  std::string failed(const Operation& op, const char* call, int error) const;

  std::string path_;
  Model& model_;
  bool direct_;
  int fd_ = -1;
  int direct_fd_ = -1;
  uint8_t* buffer_ = nullptr;  // aligned for O_DIRECT, as long as the longest operation (or 1 MiB)
  uint64_t buffer_size_ = 0;
  std::string open_error_;
  std::array<uint64_t, kOpKinds> counts_{};
};

}  // namespace clonefs::exerciser
