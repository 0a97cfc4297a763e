// clonefs(1) is written by hand: every flag each subcommand's --help lists must be described in
// it (a flag added without its line fails here), and groff reads it without a warning.
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "support/system.h"

namespace clonefs::testing {
namespace {

std::string man_page() {
  return run("cat " + shell_quote(std::string(CLONEFS_SOURCE_DIR) + "/operate/clonefs.1")).output;
}

TEST(ManPage, DescribesEveryFlagOfEverySubcommand) {
  std::string page = man_page();
  ASSERT_FALSE(page.empty());
  CommandResult top = run(shell_quote(clonefs_binary()) + " --help");
  std::regex subcommand_line(R"(\n  ([a-z]+) {2,})");
  std::set<std::string> subcommands;
  for (std::sregex_iterator it(top.output.begin(), top.output.end(), subcommand_line), end;
       it != end; ++it)
    subcommands.insert((*it)[1]);
  ASSERT_GE(subcommands.size(), 6u) << top.output;
  std::regex flag(R"((^|[\s,])(--[a-z][a-z-]*))");
  for (const std::string& sub : subcommands) {
    EXPECT_NE(page.find(".B " + sub), std::string::npos) << "subcommand " << sub;
    CommandResult help = run(shell_quote(clonefs_binary()) + " " + sub + " --help");
    ASSERT_EQ(help.exit_code, 0) << help.output;
    for (std::sregex_iterator it(help.output.begin(), help.output.end(), flag), end; it != end;
         ++it) {
      std::string name = (*it)[2];
      if (name == "--help") continue;
      std::string roff = std::regex_replace(name, std::regex("-"), "\\-");
      EXPECT_NE(page.find(roff), std::string::npos)
          << "`clonefs " << sub << " --help` lists " << name
          << ", which operate/clonefs.1 does not describe: add it";
    }
  }
}

TEST(ManPage, GroffReadsItWithoutWarnings) {
  if (run("command -v groff").exit_code != 0) {
    if (running_in_ci()) FAIL() << "groff is missing (package groff-base)";
    GTEST_SKIP() << "needs groff (package groff-base)";
  }
  CommandResult r = run("groff -man -ww -z " +
                        shell_quote(std::string(CLONEFS_SOURCE_DIR) + "/operate/clonefs.1"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "");
}

}  // namespace
}  // namespace clonefs::testing
