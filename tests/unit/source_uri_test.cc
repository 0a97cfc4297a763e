// Which source names are URIs, which URIs clonefs takes, and what is left of a secret.
#include "io/source_uri.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>

namespace clonefs {
namespace {

TEST(SourceUri, OnlySchemeSlashSlashMakesAUri) {
  EXPECT_TRUE(is_source_uri("nbd://host/export"));
  EXPECT_TRUE(is_source_uri("nbd+unix:///?socket=/run/s"));
  EXPECT_TRUE(is_source_uri("http://host/x.img"));
  EXPECT_FALSE(is_source_uri("/srv/golden.img"));
  EXPECT_FALSE(is_source_uri("relative/dir://odd"));  // a path with "://" deeper in it
  EXPECT_FALSE(is_source_uri("golden.img"));
}

TEST(SourceUri, OtherSchemesAndSocketlessUnixUrisAreRefusedWithAHint) {
  EXPECT_TRUE(check_source_uri("nbd://host:10809/golden").is_ok());
  EXPECT_TRUE(check_source_uri("nbds://host/golden").is_ok());
  EXPECT_TRUE(check_source_uri("nbd+unix:///golden?socket=/run/s").is_ok());
  EXPECT_TRUE(check_source_uri("https://example.com/golden.img").is_ok());
  EXPECT_TRUE(check_source_uri("http://127.0.0.1:8080/golden.img?X-Amz-Signature=s").is_ok());
  EXPECT_EQ(check_source_uri("https:///golden.img").code(), EINVAL);
  Status s3 = check_source_uri("s3://bucket/golden.img");
  EXPECT_EQ(s3.code(), EINVAL);
  EXPECT_NE(s3.message().find("presigned https://"), std::string::npos) << s3.message();
  Status unix_only = check_source_uri("nbd+unix:///golden");
  EXPECT_NE(unix_only.message().find("socket="), std::string::npos) << unix_only.message();
}

TEST(SourceUri, PasswordsAndKeysAreRedacted) {
  EXPECT_EQ(redact_uri("nbd://host/golden"), "nbd://host/golden");
  EXPECT_EQ(redact_uri("nbds://alice:hunter2@host:10809/golden"),
            "nbds://alice:***@host:10809/golden");
  EXPECT_EQ(redact_uri("nbds://alice@host/golden"), "nbds://alice@host/golden");
  EXPECT_EQ(redact_uri("nbd+unix:///g?socket=/run/s&password=hunter2&tls-psk-file=/etc/psk"),
            "nbd+unix:///g?socket=/run/s&password=***&tls-psk-file=/etc/psk");
  // A '#' in the query is part of a value (NBD URIs have no fragment): nothing after it leaks.
  EXPECT_EQ(redact_uri("nbds://h/g?access_key=AKIA&secret=s3cr3t&api-token=t#frag"),
            "nbds://h/g?access_key=***&secret=***&api-token=***");
  // An @ in the query is not a user:password.
  EXPECT_EQ(redact_uri("nbd+unix:///g?socket=/run/a:b@c"), "nbd+unix:///g?socket=/run/a:b@c");
  // Redacting twice changes nothing: the recorded form is compared with a redacted one.
  const std::string once = redact_uri("nbds://u:p@h/g?key=k");
  EXPECT_EQ(redact_uri(once), once);
}

// Issue #28: a presigned URL's whole query is its secret, and one signed again for a later mount
// redacts the same (the recorded form is compared with CLONEFS_SOURCE_URI's, redacted).
TEST(SourceUri, AnHttpUrlsQueryIsRedactedWhole) {
  EXPECT_EQ(redact_uri("https://h/golden.img"), "https://h/golden.img");
  EXPECT_EQ(redact_uri("https://b.s3.amazonaws.com/g.img?X-Amz-Algorithm=AWS4-HMAC-SHA256&"
                       "X-Amz-Credential=AKIA%2F1&X-Amz-Date=20261207T000000Z&X-Amz-Expires=3600&"
                       "X-Amz-Signature=abc123"),
            "https://b.s3.amazonaws.com/g.img?***");
  EXPECT_EQ(redact_uri("http://alice:pw@h:8080/g.img?sig=x"), "http://alice:***@h:8080/g.img?***");
  EXPECT_EQ(redact_uri("https://h/g.img?X-Amz-Signature=one&X-Amz-Date=1"),
            redact_uri("https://h/g.img?X-Amz-Signature=two&X-Amz-Date=2"));
  const std::string once = redact_uri("http://u:p@h/g?a=b");
  EXPECT_EQ(redact_uri(once), once);
  const std::string url = "https://h/g.img?X-Amz-Credential=AKIA&X-Amz-Signature=abc123";
  EXPECT_EQ(redact_text("curl: [" + url + "] and abc123 alone", url),
            "curl: [https://h/g.img?***] and *** alone");
  // Named like a signature in an NBD URI's query, too.
  EXPECT_EQ(redact_uri("nbds://h/g?signature=x&sig=y"), "nbds://h/g?signature=***&sig=***");
}

// Issue #25, hole 6: what the first redact_uri let through.
TEST(SourceUri, APasswordWithUnencodedDelimitersIsRedactedWhole) {
  EXPECT_EQ(redact_uri("nbds://alice:pa/ss?w#rd@host:10809/golden"),
            "nbds://alice:***@host:10809/golden");
  EXPECT_EQ(redact_uri("nbds://alice:p@ss@host/golden"), "nbds://alice:***@host/golden");
  EXPECT_EQ(redact_uri("nbds://alice:x@y/z@[::1]:10809/g?socket=/s"),
            "nbds://alice:***@[::1]:10809/g?socket=/s");
  // No password, no change; an @ in a socket path is still not a userinfo.
  EXPECT_EQ(redact_uri("nbd://alice@host/g"), "nbd://alice@host/g");
  EXPECT_EQ(redact_uri("nbd+unix:///g?socket=/run/a:b@c"), "nbd+unix:///g?socket=/run/a:b@c");
}

TEST(SourceUri, SemicolonParametersAndEncodedNamesAreRedacted) {
  EXPECT_EQ(redact_uri("nbds://h/g?tls-username=al;password=pw;socket=/s"),
            "nbds://h/g?tls-username=al;password=***;socket=/s");
  EXPECT_EQ(redact_uri("nbds://h/g?pass%77ord=pw&%6Bey=k&tls%2Dpsk%2Dfile=/etc/psk"),
            "nbds://h/g?pass%77ord=***&%6Bey=***&tls%2Dpsk%2Dfile=/etc/psk");
  EXPECT_EQ(redact_uri("nbds://h/g?PASSWD=a&aws_credentials=b"),
            "nbds://h/g?PASSWD=***&aws_credentials=***");
  for (const char* uri : {"nbds://alice:pa/ss?w#rd@host:10809/golden",
                          "nbds://h/g?tls-username=al;password=pw", "nbds://h/g?pass%77ord=pw"}) {
    EXPECT_EQ(redact_uri(redact_uri(uri)), redact_uri(uri)) << uri;
  }
}

// libnbd quotes the URI it could not parse, or the part it choked on (a password read as a port).
TEST(SourceUri, TextAboutAUriLosesItsSecrets) {
  const std::string uri = "nbds://alice:pa/ss@host/g?key=k%41y";
  std::string said = redact_text("unable to parse URI " + uri + ": port 'pa/ss' and key kAy", uri);
  EXPECT_EQ(said, "unable to parse URI nbds://alice:***@host/g?key=***: port '***' and key ***");
  EXPECT_EQ(redact_text("no secret in nbd://h/g", "nbd://h/g"), "no secret in nbd://h/g");
  // Found by tests/fuzz (corpus/source_uri/empty-secret-value-found-by-fuzzing): an empty secret
  // value redacts to "***", so the redacted form holds the URI; nothing is hidden or leaked.
  EXPECT_EQ(redact_uri("nbd://h/g?api_token="), "nbd://h/g?api_token=***");
  EXPECT_EQ(redact_text("at nbd://h/g?api_token=", "nbd://h/g?api_token="),
            "at nbd://h/g?api_token=***");
}

TEST(SourceUri, ARedactedRecordNeedsTheFullUriFromTheEnvironment) {
  ::unsetenv(kSourceUriVariable);
  EXPECT_EQ(*source_uri_for_mount("nbd://h/g"), "nbd://h/g");
  auto missing = source_uri_for_mount("nbds://u:***@h/g");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find(kSourceUriVariable), std::string::npos);
  ::setenv(kSourceUriVariable, "nbds://u:pw@other/g", 1);
  auto other = source_uri_for_mount("nbds://u:***@h/g");
  ASSERT_FALSE(other.is_ok());
  EXPECT_EQ(other.status().message().find("pw"), std::string::npos) << other.status().message();
  ::setenv(kSourceUriVariable, "nbds://u:pw@h/g", 1);
  EXPECT_EQ(*source_uri_for_mount("nbds://u:***@h/g"), "nbds://u:pw@h/g");
  ::unsetenv(kSourceUriVariable);
}

// Found by the source_uri fuzz target: a URI whose secret parameters are stars ("secret=*", many
// times) had every star of every "***" already put in replaced again by "***", once per such
// parameter, so the text grew threefold per parameter and redacting it never ended.
TEST(SourceUri, SecretsOfStarsAndRepeatedSecretsDoNotGrowTheText) {
  std::string uri = "https://h/g?";
  for (int i = 0; i < 3; ++i) uri += "secret=*&secret=**&";
  uri += "secret=real";
  const std::string text = "failed: " + uri + " (" + uri + ")";
  const std::string said = redact_text(text, uri);
  EXPECT_LE(said.size(), text.size());
  EXPECT_EQ(said.find("real"), std::string::npos) << said;
  const std::vector<std::string> secrets = uri_secrets(uri);
  EXPECT_EQ(std::count(secrets.begin(), secrets.end(), "real"), 1);
  EXPECT_EQ(std::count(secrets.begin(), secrets.end(), "*"), 0);
}

}  // namespace
}  // namespace clonefs
