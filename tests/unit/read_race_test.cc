// A region that becomes valid while a read is deciding how to serve it: the read must finish
// with the region's data, whichever way it goes. Region 0 is where this happens for real
// (mkfs writes its superblock while blkid reads it).
#include <future>
#include <thread>

#include "support/engine_fixture.h"

namespace clonefs::testing {
namespace {

class ReadRace : public EngineFixture {
 protected:
  // Reads [offset, offset+length) while, between the read's first validity test and its scan
  // of the run, `region` is written whole. Fails (and aborts: the thread cannot be joined) if
  // the read does not finish.
  void read_while_region_becomes_valid(uint64_t offset, uint64_t length, uint64_t region) {
    auto bytes = random_bytes(kRegion, 9);
    std::atomic<bool> fired{false};
    EngineOptions options{.copy_on_read = false, .commit_period = std::chrono::milliseconds(0)};
    options.hooks.after_read_validity_test = [&](uint64_t tested) {
      if (tested != region || fired.exchange(true)) return;
      ASSERT_TRUE(write(region * kRegion, bytes).is_ok());
    };
    open_engine(options);
    auto result = std::make_shared<std::promise<std::vector<std::byte>>>();
    auto done = result->get_future();
    std::thread([this, result, offset, length] {
      std::vector<std::byte> got(length);
      Status st = engine_->read(offset, got);
      EXPECT_TRUE(st.is_ok()) << st.message();
      result->set_value(std::move(got));
    }).detach();
    if (done.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      ADD_FAILURE() << "read at offset " << offset << " did not finish after region " << region
                    << " became valid under it";
      std::abort();
    }
    EXPECT_TRUE(fired.load());
    EXPECT_TRUE(done.get() == model(offset, length));
  }
};

TEST_F(ReadRace, RegionZeroBecomingValidUnderAReadAtOffsetZero) {
  read_while_region_becomes_valid(0, 2 * kRegion, 0);
}

TEST_F(ReadRace, RegionBecomingValidUnderAReadInTheMiddle) {
  read_while_region_becomes_valid(3 * kRegion + 5, 3 * kRegion, 3);
}

}  // namespace
}  // namespace clonefs::testing
