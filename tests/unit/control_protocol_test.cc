// The hydration control requests, as parsed by the daemon (the ioctl) and checked by the CLI
// before it sends them: absurd values are refused with the limit, not applied.
#include <gtest/gtest.h>

#include "control/control_protocol.h"

namespace clonefs {
namespace {

TEST(HydrateControl, ParsesEveryRequest) {
  auto batch = parse_hydrate_command("batch=1024");
  ASSERT_TRUE(batch.is_ok()) << batch.status().message();
  EXPECT_EQ(batch->kind, HydrateCommand::Kind::kBatch);
  EXPECT_EQ(batch->value, 1024u);
  auto threshold = parse_hydrate_command("threshold=65536\n");
  ASSERT_TRUE(threshold.is_ok()) << threshold.status().message();
  EXPECT_EQ(threshold->value, 65536u);
  EXPECT_TRUE(parse_hydrate_command("rate=0").is_ok());
  EXPECT_TRUE(parse_hydrate_command("pause").is_ok());
}

TEST(HydrateControl, RefusesAbsurdBatchAndThresholdNamingTheLimit) {
  auto batch = parse_hydrate_command("batch=100000");
  ASSERT_FALSE(batch.is_ok()) << "a batch of 100000 regions was accepted";
  EXPECT_EQ(batch.status().code(), EINVAL);
  EXPECT_NE(batch.status().message().find("1024"), std::string::npos) << batch.status().message();
  auto threshold = parse_hydrate_command("threshold=100000");
  ASSERT_FALSE(threshold.is_ok()) << "a threshold of 100000 regions was accepted";
  EXPECT_NE(threshold.status().message().find("65536"), std::string::npos) << threshold.status().message();
  EXPECT_FALSE(parse_hydrate_command("batch=18446744073709551615").is_ok());
  EXPECT_FALSE(parse_hydrate_command("batch=0").is_ok());
}

}  // namespace
}  // namespace clonefs
