// Issue 17: a loop device left buffered reads the image through its page cache, in windows of
// the mount's readahead. FUSE starts a mount at 128 KiB and clonefs leaves it there unless
// `mount --readahead KIB` sets it once the mount serves (fuse/readahead.h says why that is not
// the default). The window is read back from sysfs here, by path, as an operator would check it.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <fstream>

#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

class Readahead : public MountTest {
 protected:
  // The mount's read_ahead_kb, -1 if unreadable.
  long readahead_kib() {
    struct stat st {};
    if (::stat(image().c_str(), &st) != 0) return -1;
    std::ifstream in("/sys/class/bdi/" + std::to_string(major(st.st_dev)) + ":" +
                     std::to_string(minor(st.st_dev)) + "/read_ahead_kb");
    long kib = -1;
    in >> kib;
    return kib;
  }
  void mount_fresh(const std::string& flags) {
    write_file(source(), random_bytes(8 << 20, 17));
    create();
    mount("--no-hydration " + flags);
  }
};

TEST_F(Readahead, DefaultLeavesTheKernelsWindow) {
  mount_fresh("");
  EXPECT_EQ(readahead_kib(), 128);
}

TEST_F(Readahead, ZeroLeavesTheKernelsWindow) {
  mount_fresh("--readahead 0");
  EXPECT_EQ(readahead_kib(), 128);
}

TEST_F(Readahead, FourMebibytesIsSet) {
  mount_fresh("--readahead 4096");
  EXPECT_EQ(readahead_kib(), 4096);
}

TEST_F(Readahead, GivenValueIsSet) {
  mount_fresh("--readahead 512");
  EXPECT_EQ(readahead_kib(), 512);
}

TEST_F(Readahead, ReadsThroughTheWindowReturnTheSource) {
  // A read of the whole image in one buffered pass: every readahead window (4 MiB reads split
  // by max_read, in flight at once) lands at its own offset.
  const std::vector<std::byte> data = random_bytes(24 << 20, 23);
  write_file(source(), data);
  create();
  mount("--no-hydration --readahead 4096");
  ASSERT_EQ(run("sync; echo 3 > /proc/sys/vm/drop_caches").exit_code, 0);
  EXPECT_TRUE(read_file(image()) == data);
}

TEST_F(Readahead, OutOfRangeIsRefusedBeforeMounting) {
  write_file(source(), random_bytes(1 << 20, 3));
  create();
  CommandResult r = run(clonefs("mount --metadata " + shell_quote(meta()) + " " +
                                shell_quote(image()) + " --readahead 2000000"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--readahead"), std::string::npos) << r.output;
  EXPECT_EQ(run("grep -c " + shell_quote(image()) + " /proc/mounts").output, "0\n");
}

}  // namespace
}  // namespace clonefs::testing
