// fuse/readahead.h changes only a FUSE mount's readahead: given a path that is not (or no longer)
// mounted, it must not write the readahead of the disk under it.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "fuse/readahead.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

TEST(MountReadahead, APathNotOnAFuseMountIsRefusedAndItsDiskLeftAlone) {
  TempDir dir;
  const std::string file = dir.file("image");
  std::ofstream(file) << "x";
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  const std::string sysfs = readahead_path(st.st_dev);
  long before = -1;
  std::ifstream(sysfs) >> before;
  // The disk's own value, so that even a failure of this test changes nothing.
  const unsigned kib = before > 0 ? static_cast<unsigned>(before) : 128;
  Status set = set_mount_readahead(file, kib);
  EXPECT_FALSE(set.is_ok()) << "wrote " << sysfs;
  EXPECT_NE(set.message().find("not a FUSE mount"), std::string::npos) << set.message();
  EXPECT_FALSE(mount_readahead(file).is_ok());
}

}  // namespace
}  // namespace clonefs::testing
