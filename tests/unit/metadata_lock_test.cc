// docs/SEMANTICS.md "Access": a clone's metadata is held by one process at a time. A mount, a
// `create --force` and a `finalize` refuse while another holds it, naming that process; a
// status reader holds nothing, so it can never make a mount fail.
#include <gtest/gtest.h>
#include <unistd.h>

#include "engine/clone.h"
#include "support/created_clone.h"

namespace clonefs::testing {
namespace {

using MetadataHolder = CreatedClone;

TEST_F(MetadataHolder, AStatusReaderNeverMakesAMountFail) {
  auto reader = MetadataStore::open(meta(), {.read_only = true});
  ASSERT_TRUE(reader.is_ok()) << reader.status().message();
  auto mount = MetadataStore::open(meta());
  EXPECT_TRUE(mount.is_ok()) << mount.status().message();
}

TEST_F(MetadataHolder, ASecondWriterIsRefusedNamingTheHolder) {
  auto mount = MetadataStore::open(meta());
  ASSERT_TRUE(mount.is_ok()) << mount.status().message();
  auto second = MetadataStore::open(meta());
  ASSERT_FALSE(second.is_ok());
  EXPECT_EQ(second.status().code(), EBUSY);
  EXPECT_NE(second.status().message().find("pid " + std::to_string(::getpid())), std::string::npos)
      << second.status().message();
}

TEST_F(MetadataHolder, CreateForceRefusesWhileAMountHoldsTheMetadata) {
  auto mount = MetadataStore::open(meta());
  ASSERT_TRUE(mount.is_ok()) << mount.status().message();
  std::string before = file_digest(meta());
  Status replaced = create_clone({source(), dest(), meta(), 4096, true});
  ASSERT_FALSE(replaced.is_ok()) << "create --force replaced the metadata of a live mount";
  EXPECT_EQ(replaced.code(), EBUSY);
  EXPECT_NE(replaced.message().find("pid " + std::to_string(::getpid())), std::string::npos)
      << replaced.message();
  EXPECT_EQ(file_digest(meta()), before);
}

TEST_F(MetadataHolder, CreateForceReplacesAnUnheldMetadataFile) {
  Status replaced = create_clone({source(), dest(), meta(), 8192, true});
  ASSERT_TRUE(replaced.is_ok()) << replaced.message();
  auto store = MetadataStore::open(meta());
  ASSERT_TRUE(store.is_ok()) << store.status().message();
  EXPECT_EQ((*store)->record().region_size, 8192u);
}

}  // namespace
}  // namespace clonefs::testing
