// A clone on real files in a temp dir, with counting/faulty wrappers around every device, and
// a reference model of what the image must read ("source overlaid with completed writes").
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "engine/clone.h"
#include "io/posix_devices.h"
#include "support/fault_devices.h"
#include "support/temp_dir.h"

namespace clonefs::testing {

class EngineFixture : public ::testing::Test {
 protected:
  static constexpr uint64_t kRegion = 4096;
  // 16 whole regions and a short last one.
  static constexpr uint64_t kImageSize = 16 * kRegion + 1000;

  void SetUp() override {
    source_bytes_ = random_bytes(kImageSize, 42);
    write_file(dir_.file("source.img"), source_bytes_);
    model_ = source_bytes_;
    CreateOptions create{dir_.file("source.img"), dir_.file("dest.img"), dir_.file("meta.db"),
                         kRegion, false};
    ASSERT_TRUE(create_clone(create).is_ok());
    open_engine();
  }

  void open_engine(EngineOptions options = {.copy_on_read = false,
                                            .commit_period = std::chrono::milliseconds(0)}) {
    engine_.reset();
    store_.reset();
    meta_.reset();  // releases the metadata lock before it is taken again
    auto meta = MetadataStore::open(dir_.file("meta.db"));
    ASSERT_TRUE(meta.is_ok()) << meta.status().message();
    meta_ = std::move(*meta);
    auto source = open_source(dir_.file("source.img"));
    ASSERT_TRUE(source.is_ok());
    real_source_ = std::move(*source);
    auto dest = open_destination(dir_.file("dest.img"), std::nullopt);
    ASSERT_TRUE(dest.is_ok());
    real_dest_ = std::move(*dest);
    source_ = std::make_unique<FaultySource>(*real_source_);
    source_->share_descriptor = share_source_descriptor_;
    dest_ = std::make_unique<FaultyDestination>(*real_dest_);
    store_ = std::make_unique<RecordingStore>(*meta_);
    auto geometry = Geometry::make(kImageSize, kRegion);
    auto engine = CloneEngine::start(*geometry, *source_, *dest_, *store_, options);
    ASSERT_TRUE(engine.is_ok()) << engine.status().message();
    engine_ = std::move(*engine);
  }

  // Drops the engine without a final commit: what a killed process leaves.
  void crash_and_reopen() {
    engine_.reset();
    open_engine();
  }

  Status write(uint64_t offset, const std::vector<std::byte>& bytes) {
    Status st = engine_->write(offset, bytes);
    if (st.is_ok())
      std::copy(bytes.begin(), bytes.end(), model_.begin() + static_cast<long>(offset));
    return st;
  }

  std::vector<std::byte> read(uint64_t offset, uint64_t length) {
    std::vector<std::byte> out(length);
    Status st = engine_->read(offset, out);
    EXPECT_TRUE(st.is_ok()) << st.message();
    return out;
  }

  std::vector<std::byte> model(uint64_t offset, uint64_t length) const {
    return {model_.begin() + static_cast<long>(offset),
            model_.begin() + static_cast<long>(offset + length)};
  }

  void expect_image_matches_model() {
    EXPECT_TRUE(read(0, kImageSize) == model_) << "image differs from source overlaid with writes";
  }

  TempDir dir_;
  // Lets the destination copy from the source inside the kernel (FaultySource hides it).
  bool share_source_descriptor_ = false;
  std::vector<std::byte> source_bytes_;
  std::vector<std::byte> model_;
  std::unique_ptr<MetadataStore> meta_;
  std::unique_ptr<SourceDevice> real_source_;
  std::unique_ptr<DestinationDevice> real_dest_;
  std::unique_ptr<FaultySource> source_;
  std::unique_ptr<FaultyDestination> dest_;
  std::unique_ptr<RecordingStore> store_;
  std::unique_ptr<CloneEngine> engine_;
};

}  // namespace clonefs::testing
