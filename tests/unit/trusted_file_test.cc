// Issue #25, hole 1: as root, the metadata and the destination it records are used only if no
// other user owns them, can write the metadata, or can swap anything on the way to them. Run as
// root with real files given to uid 65534 (nobody), as an attacker's would be.
#include "io/trusted_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "engine/clone.h"
#include "meta/metadata_store.h"
#include "support/crafted_metadata.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

constexpr uid_t kNobody = 65534;

class TrustedFile : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      if (std::getenv("CI") != nullptr) FAIL() << "CI must run the trusted-file tests as root";
      GTEST_SKIP() << "needs root to give files to another user";
    }
    ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
    write_file(file_, random_bytes(100, 1));
    ASSERT_EQ(::chmod(file_.c_str(), 0644), 0);
  }
  Status check(const std::string& path, TrustedKind kind = TrustedKind::kMetadata) {
    return check_trusted_file(path, "metadata", kind, root_);
  }
  static void expect_refused(const Status& status, const std::string& what) {
    EXPECT_EQ(status.code(), EPERM) << status.message();
    EXPECT_NE(status.message().find(what), std::string::npos) << status.message();
  }

  TrustPolicy root_{.caller = 0, .enforced = true, .trusted_owners = {0}};
  TempDir dir_;
  std::string file_ = dir_.file("meta.clonefs");
};

TEST_F(TrustedFile, RootsOwnFileInRootsDirectoryIsTrusted) {
  EXPECT_TRUE(check(file_).is_ok()) << check(file_).message();
  // The same file by a path with a dot-dot and a dot in it.
  EXPECT_TRUE(check(dir_.path() + "/../" + dir_.path().substr(5) + "/./meta.clonefs").is_ok());
}

TEST_F(TrustedFile, AFileOfAnotherUserIsRefusedNamingOwnerAndMode) {
  ASSERT_EQ(::chown(file_.c_str(), kNobody, kNobody), 0);
  Status refused = check(file_);
  expect_refused(refused, "metadata " + file_ + " is not trusted: file " + file_ +
                              " belongs to another user (owner nobody (uid 65534), mode 0644)");
  EXPECT_EQ(refused.message().find('\n'), std::string::npos);
  // The invoking user's own file is theirs to use (sudo sets SUDO_UID).
  TrustPolicy sudo = root_;
  sudo.trusted_owners.push_back(kNobody);
  EXPECT_TRUE(check_trusted_file(file_, "metadata", TrustedKind::kMetadata, sudo).is_ok());
  // Without root the kernel decides: nothing to refuse.
  EXPECT_TRUE(check_trusted_file(file_, "metadata", TrustedKind::kMetadata, {}).is_ok());
}

TEST_F(TrustedFile, MetadataOthersCanWriteIsRefusedADestinationIsNot) {
  ASSERT_EQ(::chmod(file_.c_str(), 0664), 0);
  expect_refused(check(file_), "can be written by other users (owner root (uid 0), mode 0664)");
  EXPECT_TRUE(check(file_, TrustedKind::kDestination).is_ok());
  ASSERT_EQ(::chmod(file_.c_str(), 0646), 0);
  expect_refused(check(file_), "mode 0646");
}

TEST_F(TrustedFile, ADirectoryOfAnotherUserOnTheWayIsRefused) {
  const std::string sub = dir_.file("svc");
  ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
  write_file(sub + "/meta", random_bytes(10, 2));
  ASSERT_EQ(::chown(sub.c_str(), kNobody, kNobody), 0);
  expect_refused(check(sub + "/meta"), "directory " + sub + " belongs to another user");
  // Also as a destination: the directory's owner could rename it and plant a symlink.
  expect_refused(check(sub + "/meta", TrustedKind::kDestination), "belongs to another user");
}

TEST_F(TrustedFile, AWorldWritableDirectoryOnlyWithTheStickyBit) {
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0777), 0);
  expect_refused(check(file_), "directory " + dir_.path() + " can be written by other users");
  ASSERT_EQ(::chmod(dir_.path().c_str(), 01777), 0);
  EXPECT_TRUE(check(file_).is_ok()) << check(file_).message();
}

TEST_F(TrustedFile, SymlinksAreFollowedAndCheckedOnTheWay) {
  const std::string theirs = dir_.file("theirs");
  ASSERT_EQ(::mkdir(theirs.c_str(), 0755), 0);
  write_file(theirs + "/meta", random_bytes(10, 3));
  ASSERT_EQ(::chown(theirs.c_str(), kNobody, kNobody), 0);
  // A link root made, to a file behind a directory nobody controls: the target is what counts.
  ASSERT_EQ(::symlink((theirs + "/meta").c_str(), dir_.file("link").c_str()), 0);
  expect_refused(check(dir_.file("link")), "directory " + theirs + " belongs to another user");
  // A link nobody owns (in a sticky directory it could have planted it) to root's own file.
  ASSERT_EQ(::symlink(file_.c_str(), dir_.file("planted").c_str()), 0);
  ASSERT_EQ(::lchown(dir_.file("planted").c_str(), kNobody, kNobody), 0);
  expect_refused(check(dir_.file("planted")), "symlink " + dir_.file("planted"));
  // A relative link of root's own, to root's file: fine.
  ASSERT_EQ(::symlink("meta.clonefs", dir_.file("rel").c_str()), 0);
  EXPECT_TRUE(check(dir_.file("rel")).is_ok()) << check(dir_.file("rel")).message();
  // A loop is reported, not followed for ever.
  ASSERT_EQ(::symlink("loop", dir_.file("loop").c_str()), 0);
  EXPECT_EQ(check(dir_.file("loop")).code(), ELOOP);
  EXPECT_EQ(check(dir_.file("missing")).code(), ENOENT);
}

// What every command that opens metadata goes through (mount, status, hydrate's plan, finalize,
// create --force), and what Clone::open checks of the destination it is about to write.
TEST_F(TrustedFile, MetadataStoreAndCloneRefuseAnotherUsersFiles) {
  ASSERT_TRUE(write_valid_metadata(file_));
  ASSERT_EQ(::chown(file_.c_str(), kNobody, kNobody), 0);
  auto opened = MetadataStore::open(file_, {.read_only = true});
  ASSERT_FALSE(opened.is_ok());
  EXPECT_NE(opened.status().message().find("belongs to another user"), std::string::npos)
      << opened.status().message();
  CloneRecord record{.image_size = kCraftedImageSize,
                     .region_size = kCraftedRegionSize,
                     .source_path = "/s",
                     .source_size = kCraftedImageSize,
                     .source_fingerprint = "f",
                     .destination_path = "/d"};
  Status replaced = MetadataStore::create(file_, record, true);
  EXPECT_EQ(replaced.code(), EPERM) << replaced.message();

  write_file(dir_.file("source.img"), random_bytes(kCraftedImageSize, 4));
  CreateOptions create{dir_.file("source.img"), dir_.file("dest.img"), dir_.file("own.clonefs"),
                       kCraftedRegionSize, false};
  ASSERT_TRUE(create_clone(create).is_ok());
  ASSERT_EQ(::chown(dir_.file("dest.img").c_str(), kNobody, kNobody), 0);
  // Nor is a clone of it created (create --force writes over a destination holding data).
  CreateOptions again{dir_.file("source.img"), dir_.file("dest.img"), dir_.file("two.clonefs"),
                      kCraftedRegionSize, true};
  Status recreated = create_clone(again);
  EXPECT_EQ(recreated.code(), EPERM) << recreated.message();
  EXPECT_NE(::access(dir_.file("two.clonefs").c_str(), F_OK), 0);
  auto clone = Clone::open(dir_.file("own.clonefs"), OpenOptions{});
  ASSERT_FALSE(clone.is_ok());
  EXPECT_NE(clone.status().message().find("destination " + dir_.file("dest.img") +
                                          " is not trusted: file"),
            std::string::npos)
      << clone.status().message();
}

TEST_F(TrustedFile, TheMetadataXattrOfAnotherUsersFileIsNotFollowed) {
  const char* name = "user.clonefs.metadata";
  const std::string value = "/root/secret.clonefs";
  ASSERT_EQ(::setxattr(file_.c_str(), name, value.data(), value.size(), 0), 0) << errno;
  EXPECT_EQ(read_trusted_xattr(file_, name, root_), value);
  ASSERT_EQ(::chown(file_.c_str(), kNobody, kNobody), 0);
  EXPECT_EQ(read_trusted_xattr(file_, name, root_), std::nullopt);
  // A user follows only their own file's.
  EXPECT_EQ(read_trusted_xattr(file_, name, {.caller = 1000}), std::nullopt);
  EXPECT_EQ(read_trusted_xattr(file_, name, {.caller = kNobody}), value);
}

}  // namespace
}  // namespace clonefs::testing
