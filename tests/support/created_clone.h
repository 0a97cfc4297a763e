// A clone freshly created on real files in a temp dir (1 MiB random source, 4 KiB regions), for
// tests of what opening it, or holding its metadata, does.
#pragma once

#include <gtest/gtest.h>

#include "engine/clone.h"
#include "support/temp_dir.h"

namespace clonefs::testing {

class CreatedClone : public ::testing::Test {
 protected:
  static constexpr uint64_t kSize = 1 << 20;
  void SetUp() override {
    write_file(source(), random_bytes(kSize, 1));
    ASSERT_TRUE(create_clone({source(), dest(), meta(), 4096, false}).is_ok());
  }
  std::string source() const { return dir_.file("source.img"); }
  std::string dest() const { return dir_.file("dest.img"); }
  std::string meta() const { return dir_.file("meta.db"); }
  TempDir dir_;
};

}  // namespace clonefs::testing
