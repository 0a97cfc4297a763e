// Owning device wrappers for Clone::open's DeviceWrappers that record the shape of the I/O the
// engine issues (largest single read and write, punch calls) and can throw once from a read,
// to check memory bounds and the coalescing of discards without a real huge device.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <new>
#include <thread>

#include "engine/clone.h"
#include "io/forwarding.h"

namespace clonefs::testing {

inline void record_max(std::atomic<uint64_t>& most, uint64_t value) {
  for (uint64_t seen = most.load(); value > seen && !most.compare_exchange_weak(seen, value);) {
  }
}

class ProbeSource : private std::unique_ptr<SourceDevice>, public ForwardingSource {
 public:
  explicit ProbeSource(std::unique_ptr<SourceDevice> target)
      : std::unique_ptr<SourceDevice>(std::move(target)), ForwardingSource(**this) {}
  std::atomic<uint64_t> largest_read{0};
  std::atomic<int> throw_bad_alloc{0};  // this many next read_at() calls throw std::bad_alloc
  std::atomic<int> thrown{0};
  std::atomic<int> read_delay_ms{0};  // each read takes at least this long: a slow source
  std::atomic<int> reads{0};          // read_at() calls begun

  Status read_at(uint64_t offset, std::span<std::byte> buf) override {
    ++reads;
    record_max(largest_read, buf.size());
    if (int delay = read_delay_ms.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    for (int left = throw_bad_alloc.load(); left > 0;) {
      if (throw_bad_alloc.compare_exchange_weak(left, left - 1)) {
        ++thrown;
        throw std::bad_alloc();
      }
    }
    return ForwardingSource::read_at(offset, buf);
  }
  // What this measures and throws happens in read_at: copies inside the kernel would bypass it.
  int file_descriptor() const override { return -1; }
};

class ProbeDestination : private std::unique_ptr<DestinationDevice>, public ForwardingDestination {
 public:
  explicit ProbeDestination(std::unique_ptr<DestinationDevice> target)
      : std::unique_ptr<DestinationDevice>(std::move(target)), ForwardingDestination(**this) {}
  std::atomic<uint64_t> largest_read{0};
  std::atomic<uint64_t> largest_write{0};
  std::atomic<int> writes{0};
  std::atomic<int> punches{0};

  Status read_at(uint64_t offset, std::span<std::byte> buf) override {
    record_max(largest_read, buf.size());
    return ForwardingDestination::read_at(offset, buf);
  }
  Status write_at(uint64_t offset, std::span<const std::byte> buf) override {
    record_max(largest_write, buf.size());
    ++writes;
    return ForwardingDestination::write_at(offset, buf);
  }
  Status punch(uint64_t offset, uint64_t length) override {
    ++punches;
    return ForwardingDestination::punch(offset, length);
  }
};

// DeviceWrappers that install the probes and leave pointers to them in `source`/`destination`.
struct Probes {
  ProbeSource* source = nullptr;
  ProbeDestination* destination = nullptr;
};

inline DeviceWrappers probe_wrappers(Probes& probes) {
  DeviceWrappers wrappers;
  wrappers.source = [&probes](std::unique_ptr<SourceDevice> s) {
    auto probe = std::make_unique<ProbeSource>(std::move(s));
    probes.source = probe.get();
    return std::unique_ptr<SourceDevice>(std::move(probe));
  };
  wrappers.destination = [&probes](std::unique_ptr<DestinationDevice> d) {
    auto probe = std::make_unique<ProbeDestination>(std::move(d));
    probes.destination = probe.get();
    return std::unique_ptr<DestinationDevice>(std::move(probe));
  };
  return wrappers;
}

// Opens the clone of `metadata` through the probes; it commits only when flushed.
inline Result<std::unique_ptr<Clone>> open_probed(const std::string& metadata, Probes& probes) {
  OpenOptions options;
  options.engine.commit_period = std::chrono::milliseconds(0);
  options.wrappers = probe_wrappers(probes);
  return Clone::open(metadata, options);
}

}  // namespace clonefs::testing
