// `clonefs --version` names the release and the commit the binary was built from, so a bug
// report names the exact sources.
#include <gtest/gtest.h>

#include <regex>

#include "support/system.h"

namespace clonefs::testing {
namespace {

TEST(Version, PrintsTheReleaseAndTheCommitItWasBuiltFrom) {
  CommandResult r = run(shell_quote(clonefs_binary()) + " --version");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(r.output, m, std::regex("clonefs (\\S+) \\(commit (\\S+)\\)\n")))
      << "got: " << r.output;
  EXPECT_EQ(m[1].str(), CLONEFS_VERSION);
  const std::string commit = m[2].str();
  // Built from a git checkout: the commit must be one of the repository's (describe's forms:
  // abc1234, v0.1.0-3-gabc1234, either with -dirty). Elsewhere: "unknown". Without git here,
  // there is nothing to hold it against.
  if (run("git --version").exit_code != 0) GTEST_SKIP() << "no git to check " << commit << " with";
  if (run("git -C " + shell_quote(CLONEFS_SOURCE_DIR) + " rev-parse --git-dir").exit_code != 0) {
    EXPECT_EQ(commit, "unknown");
    return;
  }
  std::smatch hash;
  ASSERT_TRUE(std::regex_match(commit, hash, std::regex("(?:.*-g)?([0-9a-f]{7,40})(?:-dirty)?")))
      << "not git describe's output: " << commit;
  CommandResult known = run("git -C " + shell_quote(CLONEFS_SOURCE_DIR) + " cat-file -e " +
                            shell_quote(hash[1].str() + "^{commit}"));
  EXPECT_EQ(known.exit_code, 0) << commit << " is not a commit of " << CLONEFS_SOURCE_DIR << ": "
                                << known.output;
}

}  // namespace
}  // namespace clonefs::testing
