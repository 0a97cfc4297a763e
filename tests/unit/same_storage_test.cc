// docs/SEMANTICS.md "Terms" (Source) and "When things fail" (Opening, Creating): a destination or
// metadata file that is the source under another name (symlink, hard link, a `..` through a
// symlinked directory) would let writes through the image change the golden image. create and
// open compare storage identity, not path strings. Loop devices and bind mounts, which need
// root, are in tests/mount/storage_aliasing_test.cc.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "engine/clone.h"
#include "io/storage_identity.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

namespace fs = std::filesystem;

class SameStorage : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_.file("golden/deep"));
    write_file(source(), random_bytes(kSize, 7));
  }
  std::string source() const { return dir_.file("golden/source.img"); }
  std::string dest() const { return dir_.file("dest.img"); }
  std::string meta() const { return dir_.file("meta.db"); }

  // create must fail naming both paths and the relation, and write nothing.
  void expect_create_refused(const CreateOptions& options,
                             const std::vector<std::string>& needles) {
    const std::string source_before = file_digest(source());
    const bool meta_existed = fs::exists(options.metadata_path);
    Status st = create_clone(options);
    ASSERT_FALSE(st.is_ok()) << "create accepted " << options.destination_path << " / "
                             << options.metadata_path;
    for (const std::string& needle : needles) {
      EXPECT_NE(st.message().find(needle), std::string::npos)
          << "missing '" << needle << "' in: " << st.message();
    }
    EXPECT_EQ(file_digest(source()), source_before) << "the source changed";
    if (!meta_existed) {
      EXPECT_FALSE(fs::exists(options.metadata_path)) << "metadata left behind";
    }
  }
  static constexpr uint64_t kSize = 1 << 20;
  TempDir dir_;
};

TEST_F(SameStorage, IdentityFollowsSymlinksAndHardLinks) {
  fs::create_symlink(source(), dir_.file("link.img"));
  fs::create_hard_link(source(), dir_.file("hard.img"));
  write_file(dir_.file("other.img"), random_bytes(kSize, 7));
  auto a = storage_identity(source());
  auto sym = storage_identity(dir_.file("link.img"));
  auto hard = storage_identity(dir_.file("hard.img"));
  auto other = storage_identity(dir_.file("other.img"));
  ASSERT_TRUE(a && sym && hard && other);
  EXPECT_TRUE(same_storage(*a, *sym));
  EXPECT_TRUE(same_storage(*a, *hard));
  EXPECT_FALSE(same_storage(*a, *other)) << "same bytes, different files";
  auto missing = storage_identity(dir_.file("missing.img"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), ENOENT);
  EXPECT_NE(missing.status().message().find("missing.img"), std::string::npos)
      << missing.status().message();
}

TEST_F(SameStorage, DestinationSymlinkToTheSourceIsRefused) {
  fs::create_symlink(source(), dest());
  expect_create_refused(
      {source(), dest(), meta(), 4096, false},
      {"destination " + dest(), "is the source " + source(), "same file under another name"});
}

TEST_F(SameStorage, DestinationHardLinkToTheSourceIsRefused) {
  fs::create_hard_link(source(), dest());
  expect_create_refused(
      {source(), dest(), meta(), 4096, true},
      {"destination " + dest(), "is the source " + source(), "same file under another name"});
}

TEST_F(SameStorage, DestinationThroughDotDotOfASymlinkedDirectoryIsRefused) {
  // link/.. is golden/ for the kernel, but the directory holding `link` for a string compare.
  fs::create_directory_symlink(dir_.file("golden/deep"), dir_.file("link"));
  const std::string alias = dir_.file("link/../source.img");
  expect_create_refused({source(), alias, meta(), 4096, false},
                        {"destination " + alias, "is the source"});
}

TEST_F(SameStorage, MetadataThatIsTheSourceIsRefusedEvenWithForce) {
  expect_create_refused({source(), dest(), source(), 4096, false},
                        {"metadata " + source(), "is the source"});
  // --force would rename a new metadata file over the golden image.
  fs::create_hard_link(source(), dir_.file("meta-link.db"));
  expect_create_refused({source(), dest(), dir_.file("meta-link.db"), 4096, true},
                        {"metadata " + dir_.file("meta-link.db"), "is the source"});
  EXPECT_FALSE(fs::exists(dest())) << "destination created for a refused clone";
}

TEST_F(SameStorage, MetadataThatIsTheDestinationIsRefused) {
  // Both missing: the destination create makes would then be replaced by the metadata file.
  expect_create_refused({source(), dest(), dest(), 4096, false}, {"is the metadata", dest()});
  EXPECT_FALSE(fs::exists(dest())) << "destination created for a refused clone";
  // An existing (sparse) destination, and the metadata a symlink to it.
  write_file(dest(), {});
  fs::resize_file(dest(), kSize);
  fs::create_symlink(dest(), meta());
  expect_create_refused({source(), dest(), meta(), 4096, true},
                        {"destination " + dest(), "is the metadata " + meta()});
}

// The names recorded at create can be pointed elsewhere later: open checks again.
class SameStorageAtOpen : public SameStorage {
 protected:
  void SetUp() override {
    SameStorage::SetUp();
    Status created = create_clone({source(), dest(), meta(), 4096, false});
    ASSERT_TRUE(created.is_ok()) << created.message();
  }
  void expect_open_refused(const std::vector<std::string>& needles) {
    const std::string source_before = file_digest(source());
    auto clone = Clone::open(meta(), {});
    ASSERT_FALSE(clone.is_ok()) << "open accepted a clone whose files alias each other";
    for (const std::string& needle : needles) {
      EXPECT_NE(clone.status().message().find(needle), std::string::npos)
          << "missing '" << needle << "' in: " << clone.status().message();
    }
    EXPECT_EQ(file_digest(source()), source_before);
  }
};

TEST_F(SameStorageAtOpen, DestinationReplacedByAHardLinkToTheSource) {
  fs::remove(dest());
  fs::create_hard_link(source(), dest());
  expect_open_refused(
      {"destination " + dest(), "is the source " + source(), "same file under another name"});
}

TEST_F(SameStorageAtOpen, DestinationReplacedByASymlinkToTheMetadata) {
  fs::remove(dest());
  fs::create_symlink(meta(), dest());
  expect_open_refused({"destination " + dest(), "is the metadata " + meta()});
}

}  // namespace
}  // namespace clonefs::testing

namespace clonefs::testing {
namespace {

// The recorded paths are the ones the kernel resolves: `link/../x` through a symlinked directory
// is not `x` next to `link` (a lexical `..` would record, and reopen, another file).
TEST(RecordedPaths, ADotDotThroughASymlinkedDirectoryNamesWhatTheKernelOpens) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("real/sub"));
  std::filesystem::create_directory_symlink(dir.file("real/sub"), dir.file("link"));
  write_file(dir.file("real/source.img"), random_bytes(1 << 20, 3));
  const std::string source = dir.file("link/../source.img");  // real/source.img to the kernel
  ASSERT_TRUE(
      create_clone({source, dir.file("dest.img"), dir.file("meta.db"), 4096, false}).is_ok());
  auto clone = Clone::open(dir.file("meta.db"), {});
  ASSERT_TRUE(clone.is_ok()) << clone.status().message();
  std::vector<std::byte> got(4096);
  ASSERT_TRUE((*clone)->engine().read(0, got).is_ok());
  auto expected = random_bytes(1 << 20, 3);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), expected.begin()));
}

}  // namespace
}  // namespace clonefs::testing
