// The dm-clone bug this project was founded on ("flush destination device before committing
// metadata"), replayed: a destination whose unflushed writes are lost when the machine dies.
// If the engine committed the bitmap before flushing the destination, regions would be recorded
// valid while their data was never durable, and would read zeros after the crash.
#include <gtest/gtest.h>

#include <mutex>

#include "engine/clone.h"
#include "io/posix_devices.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

// Keeps written data in a "cache" until sync(); a power loss keeps only what was synced.
class VolatileDestination final : public DestinationDevice {
 public:
  explicit VolatileDestination(std::vector<std::byte> durable)
      : durable_(durable), cache_(std::move(durable)) {}
  Status read_at(uint64_t offset, std::span<std::byte> buf) override {
    std::lock_guard lock(mu_);
    std::copy_n(cache_.begin() + static_cast<long>(offset), buf.size(), buf.begin());
    return Status::ok();
  }
  Status write_at(uint64_t offset, std::span<const std::byte> buf) override {
    std::lock_guard lock(mu_);
    std::copy(buf.begin(), buf.end(), cache_.begin() + static_cast<long>(offset));
    return Status::ok();
  }
  Status punch(uint64_t offset, uint64_t length) override {
    std::lock_guard lock(mu_);
    std::fill_n(cache_.begin() + static_cast<long>(offset), length, std::byte{0});
    return Status::ok();
  }
  // With `power_fails_at_sync`, the machine dies during this sync: nothing new becomes durable.
  Status sync() override {
    std::lock_guard lock(mu_);
    if (power_fails_at_sync) return Status::error(EIO, "power lost during fdatasync (simulated)");
    durable_ = cache_;
    return Status::ok();
  }
  uint64_t size() const override { return durable_.size(); }
  const std::string& name() const override { return name_; }
  std::vector<std::byte> durable() {
    std::lock_guard lock(mu_);
    return durable_;
  }
  bool power_fails_at_sync = false;

 private:
  std::mutex mu_;
  std::vector<std::byte> durable_;
  std::vector<std::byte> cache_;
  std::string name_ = "volatile-destination";
};

TEST(SeedScenario, CommittedRegionsNeverReadDataThatWasNotDurable) {
  constexpr uint64_t kRegion = 4096, kRegions = 64, kSize = kRegion * kRegions;
  TempDir dir;
  auto source_bytes = random_bytes(kSize, 99);
  write_file(dir.file("source.img"), source_bytes);
  ASSERT_TRUE(create_clone({dir.file("source.img"), dir.file("dest.img"), dir.file("meta.db"),
                            kRegion, false})
                  .is_ok());
  auto geometry = Geometry::make(kSize, kRegion);
  auto source = open_source(dir.file("source.img"));
  ASSERT_TRUE(source.is_ok());
  std::vector<std::byte> expected = source_bytes;  // source overlaid with flushed writes
  std::vector<std::byte> durable(kSize);

  {
    auto meta = MetadataStore::open(dir.file("meta.db"));
    ASSERT_TRUE(meta.is_ok());
    VolatileDestination dest(durable);
    auto engine = CloneEngine::start(*geometry, **source, dest, **meta,
                                     {.commit_period = std::chrono::milliseconds(0)});
    ASSERT_TRUE(engine.is_ok());
    // Hydrate half, write some user data, flush: all of this is acknowledged.
    for (uint64_t r = 0; r < kRegions / 2; r += 4) ASSERT_TRUE((*engine)->hydrate(r, 4).is_ok());
    auto user = random_bytes(3 * kRegion, 5);
    ASSERT_TRUE((*engine)->write(40 * kRegion + 17, user).is_ok());
    std::copy(user.begin(), user.end(), expected.begin() + 40 * kRegion + 17);
    ASSERT_TRUE((*engine)->flush().is_ok());
    // Hydrate the rest; the next commit is cut by a power loss during the destination flush.
    for (uint64_t r = 0; r < kRegions; r += 8) ASSERT_TRUE((*engine)->hydrate(r, 8).is_ok());
    dest.power_fails_at_sync = true;
    EXPECT_FALSE((*engine)->flush().is_ok());
    durable = dest.durable();
    (*engine).reset();
  }

  // Reboot: the destination holds only what was synced; the metadata what was committed.
  auto meta = MetadataStore::open(dir.file("meta.db"));
  ASSERT_TRUE(meta.is_ok());
  VolatileDestination dest(durable);
  auto engine = CloneEngine::start(*geometry, **source, dest, **meta,
                                   {.commit_period = std::chrono::milliseconds(0)});
  ASSERT_TRUE(engine.is_ok());
  for (uint64_t r = 0; r < kRegions; ++r) {
    std::vector<std::byte> got(kRegion);
    ASSERT_TRUE((*engine)->read(r * kRegion, got).is_ok());
    EXPECT_TRUE(
        std::equal(got.begin(), got.end(), expected.begin() + static_cast<long>(r * kRegion)))
        << "region " << r << (((*engine)->bitmap().test(r)) ? " (committed valid)" : " (invalid)")
        << " reads neither the source nor the user's flushed data";
  }
}

}  // namespace
}  // namespace clonefs::testing
