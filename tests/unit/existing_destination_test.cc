// docs/SEMANTICS.md "When things fail" (Creating): a typo in --dest that names an existing image
// must not overwrite it. As mkfs and pvcreate do, create refuses a destination that already holds
// something unless --force. Block devices with a filesystem signature need root and a loop
// device: tests/mount/storage_aliasing_test.cc.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "engine/clone.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

namespace fs = std::filesystem;

class ExistingDestination : public ::testing::Test {
 protected:
  void SetUp() override { write_file(source(), random_bytes(kSize, 11)); }
  std::string source() const { return dir_.file("source.img"); }
  std::string dest() const { return dir_.file("vm.img"); }
  std::string meta() const { return dir_.file("meta.db"); }
  CreateOptions options(bool force) const { return {source(), dest(), meta(), 4096, force}; }
  // Writes `bytes` at `offset` of a file already sized kSize (holes elsewhere).
  void write_at(uint64_t offset, const std::vector<std::byte>& bytes) {
    int fd = ::open(dest().c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)),
              static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }
  static constexpr uint64_t kSize = 1 << 20;
  TempDir dir_;
};

TEST_F(ExistingDestination, AFileHoldingDataIsRefusedAndLeftAlone) {
  write_file(dest(), random_bytes(kSize, 12));
  const std::string before = file_digest(dest());
  Status st = create_clone(options(false));
  ASSERT_FALSE(st.is_ok()) << "an existing image full of data was adopted";
  EXPECT_EQ(st.code(), EEXIST);
  EXPECT_NE(st.message().find("destination " + dest() + " already holds data"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("pass --force to overwrite it"), std::string::npos) << st.message();
  EXPECT_EQ(file_digest(dest()), before);
  EXPECT_FALSE(fs::exists(meta())) << "metadata written for a refused clone";
}

TEST_F(ExistingDestination, OneDataBlockAmongHolesIsEnough) {
  write_file(dest(), {});
  fs::resize_file(dest(), kSize);
  write_at(kSize / 2, random_bytes(4096, 13));
  Status st = create_clone(options(false));
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("already holds data"), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(meta()));
}

TEST_F(ExistingDestination, AFullySparseFileIsAdopted) {
  write_file(dest(), {});
  fs::resize_file(dest(), kSize);
  Status st = create_clone(options(false));
  EXPECT_TRUE(st.is_ok()) << st.message();
}

TEST_F(ExistingDestination, ForceAdoptsAFileHoldingData) {
  write_file(dest(), random_bytes(kSize, 12));
  Status st = create_clone(options(true));
  EXPECT_TRUE(st.is_ok()) << st.message();
  EXPECT_TRUE(fs::exists(meta()));
}

}  // namespace
}  // namespace clonefs::testing
