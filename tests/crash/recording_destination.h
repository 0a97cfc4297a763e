// A destination that records every write, punch and sync into the crash trace.
#pragma once

#include <memory>

#include "crash/trace.h"
#include "io/forwarding.h"

namespace clonefs::crash {

class RecordingDestination final : public ForwardingDestination {
 public:
  RecordingDestination(std::unique_ptr<DestinationDevice> target, Trace& trace)
      : ForwardingDestination(*target), owned_(std::move(target)), trace_(trace) {}

  Status write_at(uint64_t offset, std::span<const std::byte> buf) override;
  Status punch(uint64_t offset, uint64_t length) override;
  Status sync() override;

 private:
  std::unique_ptr<DestinationDevice> owned_;
  Trace& trace_;
};

}  // namespace clonefs::crash
