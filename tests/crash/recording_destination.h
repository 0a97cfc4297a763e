// A destination that records every write, punch and sync into the crash trace.
#pragma once

#include <atomic>
#include <memory>

#include "crash/trace.h"
#include "io/forwarding.h"

namespace clonefs::crash {

class RecordingDestination final : public ForwardingDestination {
 public:
  // `copies`, if given, counts the copies inside the kernel recorded (copy_from).
  RecordingDestination(std::unique_ptr<DestinationDevice> target, Trace& trace,
                       std::atomic<uint64_t>* copies = nullptr)
      : ForwardingDestination(*target), owned_(std::move(target)), trace_(trace), copies_(copies) {}

  Status write_at(uint64_t offset, std::span<const std::byte> buf) override;
  Status punch(uint64_t offset, uint64_t length) override;
  Status sync() override;
  Status copy_from(SourceDevice& source, uint64_t offset, uint64_t length,
                   CopyMethod method) override;
  CopyMethod probe_copy(SourceDevice& source) override;

  // Offers reflink where the scratch file system (tmpfs) has none, doing it by copy_file_range:
  // the same bytes in the file, so what a crash leaves is the same, and the engine's sharing
  // paths (hydration, writes into invalid regions) run under the harness.
  bool emulate_reflink = false;

 private:
  std::unique_ptr<DestinationDevice> owned_;
  Trace& trace_;
  std::atomic<uint64_t>* copies_;
};

}  // namespace clonefs::crash
