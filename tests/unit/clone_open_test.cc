// docs/SEMANTICS.md "When things fail" (Opening): every mismatch refused with a message naming the
// file, before anything is written.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>

#include "engine/clone.h"
#include "support/created_clone.h"

namespace clonefs::testing {
namespace {

class OpeningChecks : public CreatedClone {
 protected:
  std::vector<std::string> digests() const {
    return {file_digest(source()), file_digest(dest()), file_digest(meta())};
  }
  // Opening must fail with a message containing `needle`, and change no file.
  void expect_refused(const std::string& needle) {
    auto before = digests();
    auto clone = Clone::open(meta(), {});
    ASSERT_FALSE(clone.is_ok());
    EXPECT_NE(clone.status().message().find(needle), std::string::npos) << clone.status().message();
    EXPECT_EQ(digests(), before) << "a refused open wrote something";
  }
};

TEST_F(OpeningChecks, AGoodCloneOpens) {
  auto clone = Clone::open(meta(), {});
  ASSERT_TRUE(clone.is_ok()) << clone.status().message();
  EXPECT_EQ((*clone)->engine().geometry().image_size(), kSize);
}

TEST_F(OpeningChecks, SourceWithTheSameSizeButOtherContent) {
  write_file(source(), random_bytes(kSize, 2));
  expect_refused("has changed since the clone was created");
}

TEST_F(OpeningChecks, SourceOfAnotherSize) {
  write_file(source(), random_bytes(kSize + 4096, 1));
  expect_refused("not the same image");
}

TEST_F(OpeningChecks, SourceMissing) {
  std::filesystem::remove(source());
  expect_refused("source.img");
}

TEST_F(OpeningChecks, DestinationTooSmall) {
  std::filesystem::resize_file(dest(), kSize / 2);
  expect_refused("smaller than the image");
}

TEST_F(OpeningChecks, MetadataOfAnotherProgram) {
  std::filesystem::remove(meta());
  sqlite3* db = nullptr;
  sqlite3_open(meta().c_str(), &db);
  sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1);", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  expect_refused("another program");
}

TEST_F(OpeningChecks, MetadataOfANewerFormat) {
  sqlite3* db = nullptr;
  sqlite3_open(meta().c_str(), &db);
  sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  expect_refused("format version 99");
}

TEST_F(OpeningChecks, MetadataOfRandomBytes) {
  write_file(meta(), random_bytes(8192, 3));
  expect_refused("not a clonefs metadata file");
}

TEST_F(OpeningChecks, MetadataTruncated) {
  std::filesystem::resize_file(meta(), 100);
  expect_refused("meta.db");
}

TEST_F(OpeningChecks, MetadataEmptyOrMissing) {
  write_file(meta(), {});
  expect_refused("is empty");
  std::filesystem::remove(meta());
  expect_refused("No such file");
}

TEST_F(OpeningChecks, MetadataInUseByAnotherMount) {
  auto first = Clone::open(meta(), {});
  ASSERT_TRUE(first.is_ok());
  auto second = Clone::open(meta(), {});
  ASSERT_FALSE(second.is_ok());
  EXPECT_NE(second.status().message().find("in use"), std::string::npos)
      << second.status().message();
}

TEST(CreateChecks, RefusesBadInputAndLeavesNothingBehind) {
  TempDir dir;
  write_file(dir.file("source.img"), random_bytes(1 << 16, 1));
  write_file(dir.file("empty.img"), {});
  std::filesystem::create_directory(dir.file("adir"));
  struct Case {
    CreateOptions options;
    std::string needle;
  };
  const std::string src = dir.file("source.img"), dst = dir.file("dest.img"),
                    md = dir.file("meta.db");
  std::vector<Case> cases = {
      {{dir.file("missing.img"), dst, md, 4096, false}, "No such file"},
      {{dir.file("adir"), dst, md, 4096, false}, "is a directory"},
      {{dir.file("empty.img"), dst, md, 4096, false}, "is empty"},
      {{src, dst, md, 3000, false}, "not a power of two"},
      {{src, dst, md, 1024, false}, "out of range"},
      {{src, src, md, 4096, false}, "is the source " + src},
      {{src, dir.file("nodir/dest.img"), md, 4096, false}, "nodir/dest.img"},
  };
  for (const Case& c : cases) {
    Status st = create_clone(c.options);
    EXPECT_FALSE(st.is_ok()) << c.needle;
    EXPECT_NE(st.message().find(c.needle), std::string::npos) << st.message();
    EXPECT_FALSE(std::filesystem::exists(dst)) << c.needle;
    EXPECT_FALSE(std::filesystem::exists(md)) << c.needle;
  }
}

TEST(CreateChecks, ExistingMetadataNeedsForceAndTheDestinationIsSparse) {
  TempDir dir;
  write_file(dir.file("source.img"), random_bytes(1 << 20, 1));
  CreateOptions options{dir.file("source.img"), dir.file("dest.img"), dir.file("meta.db"), 65536,
                        false};
  ASSERT_TRUE(create_clone(options).is_ok());
  struct stat st {};
  ASSERT_EQ(::stat(options.destination_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 1 << 20);
  EXPECT_EQ(st.st_blocks, 0) << "destination should be created sparse";
  Status again = create_clone(options);
  EXPECT_EQ(again.code(), EEXIST);
  EXPECT_NE(again.message().find("--force"), std::string::npos);
  options.force = true;
  EXPECT_TRUE(create_clone(options).is_ok());
}

}  // namespace
}  // namespace clonefs::testing
