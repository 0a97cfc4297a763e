// Which source names are URIs, which URIs clonefs takes, and what is left of a secret.
#include "io/source_uri.h"

#include <gtest/gtest.h>
#include <stdlib.h>

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
  Status http = check_source_uri("https://example.com/golden.img");
  EXPECT_EQ(http.code(), EINVAL);
  EXPECT_NE(http.message().find("nbdkit curl"), std::string::npos) << http.message();
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
  EXPECT_EQ(redact_uri("nbds://h/g?access_key=AKIA&secret=s3cr3t&api-token=t#frag"),
            "nbds://h/g?access_key=***&secret=***&api-token=***#frag");
  // An @ in the query is not a user:password.
  EXPECT_EQ(redact_uri("nbd+unix:///g?socket=/run/a:b@c"), "nbd+unix:///g?socket=/run/a:b@c");
  // Redacting twice changes nothing: the recorded form is compared with a redacted one.
  const std::string once = redact_uri("nbds://u:p@h/g?key=k");
  EXPECT_EQ(redact_uri(once), once);
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

}  // namespace
}  // namespace clonefs
