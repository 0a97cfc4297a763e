// Issue #25, hole 5: a metadata file anyone edited with sqlite3 is refused in one sentence naming
// the column, never crashes the reader (a NULL text column was a std::string from nullptr, an
// image size of 2^62 a bitmap too large to allocate, -1 a region count that wrapped to 0).
#include <gtest/gtest.h>

#include "daemon/status_report.h"
#include "meta/metadata_store.h"
#include "support/crafted_metadata.h"
#include "support/temp_dir.h"

namespace clonefs::testing {
namespace {

struct Crafted {
  const char* sql;       // applied after kLoosenSchemaSql
  const char* expected;  // in the refusal
};

class HostileMetadata : public ::testing::TestWithParam<Crafted> {
 protected:
  // Written once (a create and two commits, each synced), copied for each case.
  static void SetUpTestSuite() {
    pristine_dir_ = new TempDir();
    const std::string pristine = pristine_dir_->file("pristine.clonefs");
    ASSERT_TRUE(write_valid_metadata(pristine));
    ASSERT_EQ(run_sql(pristine, kLoosenSchemaSql), "");
  }
  static void TearDownTestSuite() {
    delete pristine_dir_;
    pristine_dir_ = nullptr;
  }
  void SetUp() override { write_file(path_, read_file(pristine_dir_->file("pristine.clonefs"))); }
  static TempDir* pristine_dir_;
  TempDir dir_;
  std::string path_ = dir_.file("meta.clonefs");
};
TempDir* HostileMetadata::pristine_dir_ = nullptr;

TEST_F(HostileMetadata, TheLoosenedValidFileStillOpens) {
  auto status = offline_status(path_);
  ASSERT_TRUE(status.is_ok()) << status.status().message();
  EXPECT_EQ(status->regions_valid, 17u);
}

TEST_P(HostileMetadata, IsRefusedNamingWhatIsWrong) {
  ASSERT_EQ(run_sql(path_, GetParam().sql), "");
  // The status path (reader: record, bitmap, controls) and the mount path (writer).
  auto status = offline_status(path_);
  ASSERT_FALSE(status.is_ok()) << GetParam().sql;
  EXPECT_EQ(status.status().code(), EINVAL) << status.status().message();
  const std::string& message = status.status().message();
  EXPECT_NE(message.find("metadata " + path_ + " is corrupt: "), std::string::npos) << message;
  EXPECT_NE(message.find(GetParam().expected), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    EveryColumn, HostileMetadata,
    ::testing::Values(
        Crafted{"UPDATE clone SET source_path = NULL", "clone.source_path is NULL, not text"},
        Crafted{"UPDATE clone SET destination_path = NULL", "clone.destination_path is NULL"},
        Crafted{"UPDATE clone SET source_fingerprint = NULL", "clone.source_fingerprint is NULL"},
        Crafted{"UPDATE clone SET destination_path = ''", "clone.destination_path is empty"},
        Crafted{"UPDATE clone SET destination_path = x'2f6574632f706173737764'",
                "clone.destination_path is a blob, not text"},
        Crafted{"UPDATE clone SET destination_path = '/etc/passwd' || char(0) || 'x'",
                "clone.destination_path holds a NUL byte"},
        Crafted{"UPDATE clone SET source_path = printf('%.*c', 5000, 'a')",
                "clone.source_path is 5000 bytes long"},
        Crafted{"UPDATE clone SET image_size = 4611686018427387904, source_size = "
                "4611686018427387904",
                "more than 4294967296 regions"},
        Crafted{"UPDATE clone SET image_size = -1, source_size = -1",
                "clone.image_size is negative (-1)"},
        Crafted{"UPDATE clone SET image_size = 1000000", "is not clone.source_size"},
        Crafted{"UPDATE clone SET image_size = 0, source_size = 0", "image size is 0"},
        Crafted{"UPDATE clone SET image_size = '66536'",
                "clone.image_size is text, not an integer"},
        Crafted{"UPDATE clone SET image_size = 66536.5", "is a real number, not an integer"},
        Crafted{"UPDATE clone SET region_size = 3000", "is not a power of two"},
        Crafted{"UPDATE clone SET region_size = 2048", "out of range"},
        Crafted{"UPDATE clone SET region_size = 2147483648", "out of range"},
        Crafted{"UPDATE clone SET region_size = -4096", "clone.region_size is negative"},
        Crafted{"UPDATE clone SET region_size = NULL", "clone.region_size is NULL"},
        Crafted{"DELETE FROM clone", "no clone record"},
        Crafted{"INSERT INTO region_chunk VALUES (1, x'00')", "region chunk 1 is past the last"},
        Crafted{"INSERT INTO region_chunk VALUES (-1, x'00')", "region_chunk.chunk is negative"},
        Crafted{"INSERT INTO region_chunk VALUES (9223372036854775807, x'00')",
                "past the last region"},
        Crafted{"INSERT INTO region_chunk VALUES ('0', x'000000')",
                "region_chunk.chunk is text, not an integer"},
        Crafted{"INSERT INTO region_chunk VALUES (NULL, x'000000')", "region_chunk.chunk is NULL"},
        Crafted{"UPDATE region_chunk SET bits = NULL", "region_chunk.bits is NULL, not a blob"},
        Crafted{"UPDATE region_chunk SET bits = 'abc'", "region_chunk.bits is text, not a blob"},
        Crafted{"UPDATE region_chunk SET bits = zeroblob(600)", "has 600 bytes, expected 3"},
        Crafted{"UPDATE region_chunk SET bits = x'ffff'", "has 2 bytes, expected 3"},
        Crafted{"UPDATE region_chunk SET bits = x'ffff03'", "past the last region"},
        Crafted{"UPDATE hydration_settings SET batch = 0", "hydration_settings.batch is out"},
        Crafted{"UPDATE hydration_settings SET threshold = 1000000000",
                "hydration_settings.threshold is out"},
        Crafted{"UPDATE hydration_settings SET paused = 7", "hydration_settings.paused is not 0"},
        Crafted{"UPDATE hydration_settings SET rate = -5", "hydration_settings.rate is negative"},
        Crafted{"UPDATE hydration_settings SET rate = NULL", "hydration_settings.rate is NULL"}));

// The same refusal on the mount's path (a writer's open, then the bitmap load).
TEST_F(HostileMetadata, AWriterRefusesItToo) {
  ASSERT_EQ(run_sql(path_, "UPDATE clone SET image_size = -1, source_size = -1"), "");
  auto store = MetadataStore::open(path_);
  ASSERT_FALSE(store.is_ok());
  EXPECT_NE(store.status().message().find("clone.image_size is negative"), std::string::npos)
      << store.status().message();
  ASSERT_EQ(run_sql(path_,
                    "UPDATE clone SET image_size = 66536, source_size = 66536; "
                    "INSERT INTO region_chunk VALUES (3, x'00')"),
            "");
  auto opened = MetadataStore::open(path_);
  ASSERT_TRUE(opened.is_ok()) << opened.status().message();
  RegionBitmap bitmap((*opened)->geometry().region_count());
  Status loaded = (*opened)->load(bitmap);
  EXPECT_NE(loaded.message().find("region chunk 3 is past the last region"), std::string::npos)
      << loaded.message();
}

}  // namespace
}  // namespace clonefs::testing
