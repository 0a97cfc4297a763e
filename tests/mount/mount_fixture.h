// A clone of a generated source, created with the real CLI, for tests through real mounts.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "control/status.h"
#include "support/system.h"
#include "support/temp_dir.h"

namespace clonefs::testing {

class MountTest : public ::testing::Test {
 protected:
  void SetUp() override { CLONEFS_REQUIRE_MOUNT_ENVIRONMENT(); }

  std::string source() const { return dir_.file("source.img"); }
  std::string dest() const { return dir_.file("dest.img"); }
  std::string meta() const { return dir_.file("meta.db"); }
  std::string image() const { return dir_.file("image"); }
  std::string clonefs(const std::string& args) const {
    return shell_quote(clonefs_binary()) + " " + args;
  }

  // `clonefs create` over the current source.
  void create(const std::string& extra = "") {
    CommandResult r =
        run(clonefs("create --source " + shell_quote(source()) + " --dest " + shell_quote(dest()) +
                    " --metadata " + shell_quote(meta()) + " " + extra));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  void mount(const std::string& flags = "") {
    mounted_ = std::make_unique<MountedImage>(meta(), image(), flags);
    ASSERT_TRUE(mounted_->ok()) << mounted_->result().output;
  }
  void unmount() {
    ASSERT_TRUE(mounted_);
    CommandResult r = mounted_->unmount();
    ASSERT_EQ(r.exit_code, 0) << r.output;
    mounted_.reset();
  }
  // `clonefs status --json TARGET`, read by the CLI's own reader (control/status.h): a missing or
  // mistyped field fails the test instead of reading as zero.
  CloneStatus status_json(const std::string& target) {
    CommandResult r = run(clonefs("status --json " + shell_quote(target)));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto parsed = parse_status(r.output, "clonefs status --json " + target);
    EXPECT_TRUE(parsed.is_ok()) << parsed.status().message() << "\n" << r.output;
    return parsed.is_ok() ? std::move(*parsed) : CloneStatus{};
  }

  TempDir dir_;
  std::unique_ptr<MountedImage> mounted_;  // declared after dir_: unmounted before it is removed
};

}  // namespace clonefs::testing
