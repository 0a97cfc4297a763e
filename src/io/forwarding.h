// Wrappers that forward every call to another device (as LevelDB's EnvWrapper): a test
// overrides only the call it wants to fail, count or record.
#pragma once

#include "io/devices.h"

namespace clonefs {

class ForwardingSource : public SourceDevice {
 public:
  explicit ForwardingSource(SourceDevice& target) : target_(target) {}
  Status read_at(uint64_t offset, std::span<std::byte> buf) override {
    return target_.read_at(offset, buf);
  }
  uint64_t size() const override { return target_.size(); }
  Result<std::optional<Extent>> next_data(uint64_t offset) override {
    return target_.next_data(offset);
  }
  const std::string& name() const override { return target_.name(); }
  bool reachable() const override { return target_.reachable(); }
  std::optional<SourceConnection> connection() const override { return target_.connection(); }
  void cancel_waits() override { target_.cancel_waits(); }
  int file_descriptor() const override { return target_.file_descriptor(); }

 private:
  SourceDevice& target_;
};

class ForwardingDestination : public DestinationDevice {
 public:
  explicit ForwardingDestination(DestinationDevice& target) : target_(target) {}
  Status read_at(uint64_t offset, std::span<std::byte> buf) override {
    return target_.read_at(offset, buf);
  }
  Status write_at(uint64_t offset, std::span<const std::byte> buf) override {
    return target_.write_at(offset, buf);
  }
  Status sync() override { return target_.sync(); }
  Status punch(uint64_t offset, uint64_t length) override { return target_.punch(offset, length); }
  uint64_t size() const override { return target_.size(); }
  const std::string& name() const override { return target_.name(); }
  int file_descriptor() const override { return target_.file_descriptor(); }
  CopyMethod probe_copy(SourceDevice& source) override { return target_.probe_copy(source); }
  Status copy_from(SourceDevice& source, uint64_t offset, uint64_t length,
                   CopyMethod method) override {
    return target_.copy_from(source, offset, length, method);
  }

 private:
  DestinationDevice& target_;
};

}  // namespace clonefs
