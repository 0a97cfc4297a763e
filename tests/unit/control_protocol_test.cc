// The hydration control requests, as parsed by the daemon (the ioctl) and checked by the CLI
// before it sends them: absurd values are refused with the limit, not applied.
#include "control/control_protocol.h"

#include <gtest/gtest.h>

#include <string>

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
  EXPECT_NE(threshold.status().message().find("65536"), std::string::npos)
      << threshold.status().message();
  EXPECT_FALSE(parse_hydrate_command("batch=18446744073709551615").is_ok());
  EXPECT_FALSE(parse_hydrate_command("batch=0").is_ok());
}

// What the CLI sends is what the daemon reads back: format and parse are inverses.
TEST(HydrateControl, FormatAndParseAreInverses) {
  const HydrateCommand commands[] = {
      {HydrateCommand::Kind::kPause, 0},        {HydrateCommand::Kind::kResume, 0},
      {HydrateCommand::Kind::kHold, 0},         {HydrateCommand::Kind::kThreshold, 65536},
      {HydrateCommand::Kind::kBatch, 1},        {HydrateCommand::Kind::kRate, 0},
      {HydrateCommand::Kind::kRate, UINT64_MAX}};
  for (const HydrateCommand& command : commands) {
    std::string text = format_hydrate_command(command);
    auto parsed = parse_hydrate_command(text);
    ASSERT_TRUE(parsed.is_ok()) << text << ": " << parsed.status().message();
    EXPECT_EQ(parsed->kind, command.kind) << text;
    EXPECT_EQ(parsed->value, command.value) << text;
  }
  EXPECT_EQ(format_hydrate_command({HydrateCommand::Kind::kRate, 5242880}), "rate=5242880");
}

// Hand-made requests (echo into a tool) end with a newline or the buffer's NULs.
TEST(HydrateControl, ToleratesTrailingNewlineAndNuls) {
  EXPECT_EQ(parse_hydrate_command("hold\n")->kind, HydrateCommand::Kind::kHold);
  EXPECT_EQ(parse_hydrate_command(std::string_view("resume\0\0", 8))->kind,
            HydrateCommand::Kind::kResume);
  EXPECT_EQ(parse_hydrate_command("rate=7\n\n")->value, 7u);
}

TEST(HydrateControl, RefusesAnythingElseQuotingIt) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "unknown hydration control \"\""},
      {"Pause", "expected pause, resume, hold"},
      {"pause ", "unknown hydration control"},
      {"rate", "unknown hydration control"},
      {"rate=", "is not a non-negative decimal number"},
      {"rate=-1", "\"-1\" is not a non-negative decimal number"},
      {"rate=+1", "is not a non-negative decimal number"},
      {"rate=1M", "is not a non-negative decimal number"},
      {"rate= 1", "is not a non-negative decimal number"},
      {"rate=18446744073709551616", "is not a non-negative decimal number"},
      {"threshold=0", "must be at least 1"},
      {"batch=1025", "at most 1024 regions"},
      {"threshold=65537", "at most 65536 regions"}};
  for (const auto& [text, why] : cases) {
    auto parsed = parse_hydrate_command(text);
    ASSERT_FALSE(parsed.is_ok()) << "\"" << text << "\" was accepted";
    EXPECT_EQ(parsed.status().code(), EINVAL) << text;
    EXPECT_NE(parsed.status().message().find(why), std::string::npos) << parsed.status().message();
    EXPECT_NE(parsed.status().message().find("\"" + std::string(text) + "\""), std::string::npos)
        << "the message does not quote the request: " << parsed.status().message();
  }
}

// Issue 13: a plan of region runs, in as many requests as it takes, each fitting the channel.
TEST(PlanCommand, ALongPlanIsSentInPartsThatReadBackAsTheSameRuns) {
  std::vector<RegionRun> runs;
  for (uint64_t i = 0; i < 5000; ++i) runs.push_back({1'000'000'000 + 7 * i, 1 + i % 5});
  std::vector<std::string> requests = format_plan_commands(runs);
  ASSERT_GT(requests.size(), 1u);
  std::vector<RegionRun> back;
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_LT(requests[i].size(), sizeof(ControlText::text));
    EXPECT_TRUE(is_plan_command(requests[i]));
    auto parsed = parse_plan_command(requests[i]);
    ASSERT_TRUE(parsed.is_ok()) << parsed.status().message();
    EXPECT_EQ(parsed->append, i > 0);
    back.insert(back.end(), parsed->runs.begin(), parsed->runs.end());
  }
  EXPECT_EQ(back, runs);
  EXPECT_EQ(format_plan_commands({}), std::vector<std::string>{"plan="});
}

TEST(PlanCommand, MalformedRunsAreRefused) {
  for (const char* text : {"plan=1", "plan=1+0", "plan=+2", "plan=1+2,", "plan=x+1", "planet"}) {
    auto parsed = parse_plan_command(text);
    EXPECT_FALSE(parsed.is_ok()) << text;
    if (!parsed.is_ok()) {
      EXPECT_EQ(parsed.status().code(), EINVAL) << text;
    }
  }
}

}  // namespace
}  // namespace clonefs
