// CLONEFS_SOURCE_HEADERS (io/http_headers.h): what is sent, what is refused, and that a refusal
// never shows a value.
#include "io/http_headers.h"

#include <gtest/gtest.h>

namespace clonefs {
namespace {

TEST(SourceHeaders, LinesBecomeNameColonValueTrimmedBlankLinesSkipped) {
  auto headers = parse_source_headers("Authorization:  Bearer abc \r\n\n  \nCookie: a=b; c=d\n");
  ASSERT_TRUE(headers) << headers.status().message();
  EXPECT_EQ(*headers, (std::vector<std::string>{"Authorization: Bearer abc", "Cookie: a=b; c=d"}));
  auto none = parse_source_headers("");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST(SourceHeaders, RefusalsNameTheLineAndNeverTheValue) {
  struct Case {
    std::string text, expected;
  };
  const std::vector<Case> cases = {
      {"A: 1\nno colon SECRET", "line 2 is not \"Name: value\""},
      {": SECRET", "line 1 is not \"Name: value\""},
      {"Bad Name: SECRET", "line 1 has a header name that is not an HTTP token"},
      {"X-T: SEC\x01RET", "line 1 (X-T) has a control character"},
      {"X-T: SEC\x7fRET", "line 1 (X-T) has a control character"},
      {"range: bytes=0-1SECRET", "line 1 (range) is a header clonefs sets itself"},
      {"If-Unmodified-Since: SECRET", "line 1 (If-Unmodified-Since) is a header clonefs"},
      {"If-None-Match: SECRET", "line 1 (If-None-Match) is a header clonefs"},
      {"Host: SECRET", "line 1 (Host) is a header clonefs"},
      {"X-Long: " + std::string(8200, 'S') + "SECRET", "line 1 (X-Long) is longer than 8192"},
  };
  for (const Case& c : cases) {
    auto headers = parse_source_headers(c.text);
    ASSERT_FALSE(headers) << c.text;
    EXPECT_EQ(headers.status().code(), EINVAL);
    const std::string message = headers.status().message();
    EXPECT_NE(message.find("CLONEFS_SOURCE_HEADERS: " + c.expected), std::string::npos) << message;
    EXPECT_EQ(message.find("SECRET"), std::string::npos) << message;
  }
}

TEST(SourceHeaders, AtMostSixtyFour) {
  std::string text;
  for (int i = 0; i < 64; ++i) text += "X-" + std::to_string(i) + ": v\n";
  ASSERT_TRUE(parse_source_headers(text));
  auto too_many = parse_source_headers(text + "X-64: v");
  ASSERT_FALSE(too_many);
  EXPECT_NE(too_many.status().message().find("line 65 is one header more than 64"),
            std::string::npos)
      << too_many.status().message();
}

}  // namespace
}  // namespace clonefs
