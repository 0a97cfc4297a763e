// Wrappers that count calls and fail them on demand, for engine tests.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "io/forwarding.h"
#include "meta/metadata_store.h"

namespace clonefs::testing {

class FaultyDestination : public ForwardingDestination {
 public:
  using ForwardingDestination::ForwardingDestination;
  std::atomic<int> syncs{0};
  std::atomic<int> writes{0};         // write_at() calls, failed or not
  std::atomic<int> fail_sync{0};      // errno to fail sync() with, 0: pass
  std::atomic<int> fail_write{0};     // errno to fail write_at() and punch() with
  std::atomic<int> injected{0};       // calls failed on purpose
  std::function<void()> before_sync;  // runs inside sync(), before the real one
  // Runs inside sync() after the real one (or the injected failure), before its result returns.
  std::function<void()> after_sync;
  std::atomic<int> copies{0};     // copy_from() calls, failed or not
  std::atomic<int> fail_copy{0};  // errno to fail copy_from() with (fail_write does too)

  Status sync() override {
    ++syncs;
    if (before_sync) before_sync();
    Status synced = Status::ok();
    if (int err = fail_sync.load()) {
      ++injected;
      synced = Status::from_errno(err, "fdatasync " + name() + " (injected)");
    } else {
      synced = ForwardingDestination::sync();
    }
    if (after_sync) after_sync();
    return synced;
  }
  Status write_at(uint64_t offset, std::span<const std::byte> buf) override {
    ++writes;
    if (int err = fail_write.load()) {
      ++injected;
      return Status::from_errno(err, "write " + name() + " (injected)");
    }
    return ForwardingDestination::write_at(offset, buf);
  }
  Status punch(uint64_t offset, uint64_t length) override {
    if (int err = fail_write.load()) {
      ++injected;
      return Status::from_errno(err, "punch " + name() + " (injected)");
    }
    return ForwardingDestination::punch(offset, length);
  }
  Status copy_from(SourceDevice& source, uint64_t offset, uint64_t length,
                   CopyMethod method) override {
    ++copies;
    if (int err = fail_copy.load() ? fail_copy.load() : fail_write.load()) {
      ++injected;
      return Status::from_errno(err,
                                std::string(to_string(method)) + " into " + name() + " (injected)");
    }
    return ForwardingDestination::copy_from(source, offset, length, method);
  }
};

class FaultySource : public ForwardingSource {
 public:
  using ForwardingSource::ForwardingSource;
  std::atomic<int> fail_read{0};
  std::atomic<int> reads{0};
  std::atomic<int> injected{0};
  std::atomic<int> read_delay_ms{0};  // each read takes at least this long, so reads overlap
  std::atomic<int> most_reading{0};   // the most reads seen in progress at once
  std::function<void(uint64_t offset)> before_read;  // set before the source is used
  // Off: the source shows no descriptor, so every byte hydration takes from it passes through
  // read_at, where the faults above are; on, copies inside the kernel bypass them.
  std::atomic<bool> share_descriptor{false};
  int file_descriptor() const override {
    return share_descriptor.load() ? ForwardingSource::file_descriptor() : -1;
  }
  // At 0 or more, the source shows a remote link that has reconnected this many times.
  std::atomic<int64_t> reconnects{-1};
  std::optional<SourceConnection> connection() const override {
    if (reconnects.load() < 0) return ForwardingSource::connection();
    SourceConnection c;
    c.state = "connected";
    c.reconnects = static_cast<uint64_t>(reconnects.load());
    return c;
  }
  Status read_at(uint64_t offset, std::span<std::byte> buf) override {
    ++reads;
    if (before_read) before_read(offset);
    if (int err = fail_read.load()) {
      ++injected;
      return Status::from_errno(err, "read " + name() + " (injected)");
    }
    int now = ++reading_;
    for (int most = most_reading.load();
         now > most && !most_reading.compare_exchange_weak(most, now);) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(read_delay_ms.load()));
    Status status = ForwardingSource::read_at(offset, buf);
    --reading_;
    return status;
  }

 private:
  std::atomic<int> reading_{0};
};

// Counts commits, keeps what each committed, and fails commit() or load() on demand.
class RecordingStore : public RegionStore {
 public:
  explicit RecordingStore(RegionStore& target) : target_(target) {}
  std::atomic<int> commits{0};
  std::atomic<int> fail_commit{0};
  std::atomic<int> fail_load{0};
  std::vector<std::vector<ChunkImage>> committed;
  std::function<void()> before_commit;  // runs inside commit(), before the store's
  std::function<void()> after_commit;   // runs inside commit(), after the store's (or the fault)

  Status load(RegionBitmap& into) override {
    if (int err = fail_load.load()) return Status::from_errno(err, "load bitmap (injected)");
    return target_.load(into);
  }
  Result<std::vector<std::byte>> load_chunk(uint64_t chunk) override {
    if (int err = fail_load.load()) return Status::from_errno(err, "load bitmap chunk (injected)");
    return target_.load_chunk(chunk);
  }
  Status commit(std::span<const ChunkImage> chunks) override {
    ++commits;
    if (before_commit) before_commit();
    Status result = Status::ok();
    if (int err = fail_commit.load()) {
      result = Status::from_errno(err, "commit (injected)");
    } else {
      committed.emplace_back(chunks.begin(), chunks.end());
      result = target_.commit(chunks);
    }
    if (after_commit) after_commit();
    return result;
  }

 private:
  RegionStore& target_;
};

}  // namespace clonefs::testing
