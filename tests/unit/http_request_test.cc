// CLONEFS_SOURCE_CA (io/http_request.h): which CA files are taken, and that nbdkit is given the
// one taken.
#include "io/http_request.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "io/curl_server.h"
#include "support/temp_dir.h"

namespace clonefs {
namespace {

TEST(SourceCa, AnAbsolutePathToAFileOnlyItsOwnerWritesIsTaken) {
  testing::TempDir dir;
  const std::string ca = dir.file("ca.pem");
  testing::write_file(ca, testing::random_bytes(64, 1));
  ASSERT_EQ(::chmod(ca.c_str(), 0644), 0);
  auto taken = checked_source_ca(ca);
  ASSERT_TRUE(taken) << taken.status().message();
  EXPECT_EQ(*taken, ca);
  auto none = checked_source_ca("");
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, "");
  // nbdkit's curl plugin gets it as cainfo=, beside the URL and headers.
  const std::string parameters =
      nbdkit_launch::curl_parameters("https://h/g.img", HttpRequest{{"A: b"}, ca}, "D");
  EXPECT_NE(parameters.find(std::string("\0cainfo=", 8) + ca + '\0'), std::string::npos);
  EXPECT_EQ(nbdkit_launch::curl_parameters("https://h/g.img", HttpRequest{}, "D").find("cainfo"),
            std::string::npos);
}

TEST(SourceCa, ARelativeMissingOrOthersWritableFileIsRefusedNamingIt) {
  testing::TempDir dir;
  auto relative = checked_source_ca("ca.pem");
  ASSERT_FALSE(relative);
  EXPECT_NE(relative.status().message().find("CLONEFS_SOURCE_CA"), std::string::npos);
  EXPECT_NE(relative.status().message().find("not an absolute path"), std::string::npos);
  auto missing = checked_source_ca(dir.file("missing.pem"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), ENOENT) << missing.status().message();
  if (::geteuid() != 0) GTEST_SKIP() << "only root refuses files other users can write";
  const std::string ca = dir.file("ca.pem");
  testing::write_file(ca, testing::random_bytes(64, 2));
  ASSERT_EQ(::chmod(ca.c_str(), 0666), 0);
  auto writable = checked_source_ca(ca);
  ASSERT_FALSE(writable);
  EXPECT_NE(writable.status().message().find("can be written by other users"), std::string::npos)
      << writable.status().message();
  EXPECT_NE(writable.status().message().find(ca), std::string::npos);
}

}  // namespace
}  // namespace clonefs
