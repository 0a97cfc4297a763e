// Issue #18: clonefs removes what it created, says so, and keeps what the user had: the empty
// IMAGE file a mount created, the META.log the mount wrote by default.
#include <sys/stat.h>

#include <filesystem>

#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

using Leftovers = MountTest;

TEST_F(Leftovers, TheImageFileTheMountCreatedIsRemovedAtUnmount) {
  write_file(source(), random_bytes(1 << 20, 11));
  create();
  ASSERT_FALSE(std::filesystem::exists(image()));
  mount("--no-hydration");
  CommandResult r = mounted_->unmount();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  mounted_.reset();
  EXPECT_FALSE(std::filesystem::exists(image())) << "the mount's empty IMAGE file was left behind";
  EXPECT_NE(r.output.find("removed " + image()), std::string::npos) << r.output;
}

TEST_F(Leftovers, AnImageFileTheUserHadIsKept) {
  write_file(source(), random_bytes(1 << 20, 12));
  create();
  write_file(image(), {});
  ::chmod(image().c_str(), 0600);
  mount("--no-hydration");
  CommandResult r = mounted_->unmount();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  mounted_.reset();
  struct stat st {};
  ASSERT_EQ(::stat(image().c_str(), &st), 0) << "the user's IMAGE file was removed";
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(r.output.find("removed"), std::string::npos) << r.output;
}

TEST_F(Leftovers, FinalizeRemoveMetadataAlsoRemovesTheMountsDefaultLog) {
  write_file(source(), random_bytes(1 << 20, 13));
  create();
  mount();
  CommandResult wait = run(clonefs("hydrate --wait " + shell_quote(image())));
  ASSERT_EQ(wait.exit_code, 0) << wait.output;
  unmount();
  ASSERT_TRUE(std::filesystem::exists(meta() + ".log"));
  CommandResult r = run(clonefs("finalize --remove-metadata --metadata " + shell_quote(meta())));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* suffix : {"", "-wal", "-shm", ".log"}) {
    EXPECT_FALSE(std::filesystem::exists(meta() + suffix)) << meta() + suffix << " was left behind";
  }
  EXPECT_NE(r.output.find("removed " + meta() + ".log"), std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dest()));
}

TEST_F(Leftovers, FinalizeKeepsALogTheUserChose) {
  write_file(source(), random_bytes(1 << 20, 14));
  create();
  const std::string log = dir_.file("my.log");
  mount("--log-file " + shell_quote(log));
  CommandResult wait = run(clonefs("hydrate --wait " + shell_quote(image())));
  ASSERT_EQ(wait.exit_code, 0) << wait.output;
  unmount();
  CommandResult r = run(clonefs("finalize --remove-metadata --metadata " + shell_quote(meta())));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(log)) << "a log the user named was removed";
}

}  // namespace
}  // namespace clonefs::testing
