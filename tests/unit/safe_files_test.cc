// io/safe_files.h without root: each rule against the attack it is for (a symlink, a hard link, a
// FIFO at the name, the directory swapped for a symlink). The same attacks by another user on the
// real binary: tests/operate/hostile_directory_test.cc.
#include "io/safe_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

class SafeFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::mkdir(dir_.file("d").c_str(), 0755), 0);
    write_file(victim(), random_bytes(100, 3));
    ASSERT_EQ(::chmod(victim().c_str(), 0600), 0);
    digest_ = file_digest(victim());
  }
  std::string victim() const { return dir_.file("victim"); }
  std::string in_d(const std::string& name) const { return dir_.file("d/" + name); }
  void expect_victim_untouched() {
    struct stat st {};
    ASSERT_EQ(::stat(victim().c_str(), &st), 0);
    EXPECT_EQ(file_digest(victim()), digest_);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
  }
  TempDir dir_;
  std::string digest_;
};

TEST_F(SafeFilesTest, ReplacingASymlinkReplacesTheNameNotItsTarget) {
  ASSERT_EQ(::symlink(victim().c_str(), in_d("f").c_str()), 0);
  ASSERT_TRUE(replace_file(in_d("f"), "new\n", {.mode = 0644}).is_ok());
  expect_victim_untouched();
  struct stat st {};
  ASSERT_EQ(::lstat(in_d("f").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST_F(SafeFilesTest, ReplacingAHardLinkLeavesTheOtherNameAlone) {
  ASSERT_EQ(::link(victim().c_str(), in_d("f").c_str()), 0);
  ASSERT_TRUE(replace_file(in_d("f"), "new\n", {.mode = 0644, .durable = true}).is_ok());
  expect_victim_untouched();
}

TEST_F(SafeFilesTest, ReplacingLeavesNoTemporaryBehind) {
  ASSERT_TRUE(replace_file(in_d("f"), "one\n", {}).is_ok());
  ASSERT_TRUE(replace_file(in_d("f"), "two\n", {}).is_ok());
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_.file("d"))) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(SafeFilesTest, ADirectorySwappedForASymlinkIsRefused) {
  ASSERT_EQ(::mkdir(dir_.file("other").c_str(), 0755), 0);
  ASSERT_EQ(::rename(dir_.file("d").c_str(), dir_.file("d.old").c_str()), 0);
  ASSERT_EQ(::symlink(dir_.file("other").c_str(), dir_.file("d").c_str()), 0);
  Status st = replace_file(in_d("f"), "x", {});
  EXPECT_TRUE(st.code() == ENOTDIR || st.code() == ELOOP) << st.message();
  EXPECT_NE(st.message().find("refused"), std::string::npos) << st.message();
  EXPECT_FALSE(std::filesystem::exists(dir_.file("other/f")));
}

TEST_F(SafeFilesTest, LogIsRefusedAsASymlinkAFifoOrAHardLink) {
  ASSERT_EQ(::symlink(victim().c_str(), in_d("sym.log").c_str()), 0);
  ASSERT_EQ(::link(victim().c_str(), in_d("hard.log").c_str()), 0);
  ASSERT_EQ(::mkfifo(in_d("fifo.log").c_str(), 0666), 0);
  for (const char* name : {"sym.log", "hard.log", "fifo.log"}) {
    auto fd = open_log_for_append(in_d(name), 0600);
    EXPECT_FALSE(fd.is_ok()) << name;
    EXPECT_NE(fd.status().message().find("refused"), std::string::npos) << fd.status().message();
  }
  expect_victim_untouched();
  auto fd = open_log_for_append(in_d("ok.log"), 0600);
  ASSERT_TRUE(fd.is_ok()) << fd.status().message();
  EXPECT_EQ(::write(fd->get(), "x", 1), 1);
  EXPECT_EQ(::fcntl(fd->get(), F_GETFL) & O_NONBLOCK, 0);
}

TEST_F(SafeFilesTest, OnlyTheFileCreatedIsRemoved) {
  auto entry = DirectoryEntry::open(in_d("img"));
  ASSERT_TRUE(entry.is_ok());
  auto fd = entry->create(O_WRONLY, 0600);
  ASSERT_TRUE(fd.is_ok()) << fd.status().message();
  struct stat created {};
  ASSERT_EQ(::fstat(fd->get(), &created), 0);
  EXPECT_EQ(created.st_mode & 0777, 0600u);
  // Another file put in its place: left alone.
  ASSERT_EQ(::unlink(in_d("img").c_str()), 0);
  ASSERT_EQ(::link(victim().c_str(), in_d("img").c_str()), 0);
  EXPECT_EQ(entry->remove_if_same(created.st_dev, created.st_ino).code(), ESTALE);
  EXPECT_TRUE(std::filesystem::exists(in_d("img")));
  expect_victim_untouched();
}

TEST_F(SafeFilesTest, CreateNeverOpensWhatIsThere) {
  ASSERT_EQ(::symlink(dir_.file("nothing-yet").c_str(), in_d("img").c_str()), 0);
  auto entry = DirectoryEntry::open(in_d("img"));
  ASSERT_TRUE(entry.is_ok());
  EXPECT_EQ(entry->create(O_WRONLY, 0600).status().code(), EEXIST);
  EXPECT_FALSE(std::filesystem::exists(dir_.file("nothing-yet")));
}

}  // namespace
}  // namespace clonefs::testing
