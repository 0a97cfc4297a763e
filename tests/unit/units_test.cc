// Byte counts as the CLI reads them (--region-size, --rate) and prints them (status, hydrate
// --wait): binary units, refusals that quote the text and name what it was for.
#include "control/units.h"

#include <gtest/gtest.h>

namespace clonefs {
namespace {

TEST(ParseByteSize, PlainAndSuffixedCaseInsensitive) {
  const std::pair<const char*, uint64_t> cases[] = {{"0", 0},
                                                    {"512", 512},
                                                    {"512b", 512},
                                                    {"4K", 4096},
                                                    {"4k", 4096},
                                                    {"4KB", 4096},
                                                    {"4KiB", 4096},
                                                    {"4kib", 4096},
                                                    {"1M", 1 << 20},
                                                    {"64MiB", 64ull << 20},
                                                    {"1G", 1ull << 30},
                                                    {"2T", 2ull << 40},
                                                    {"8388608T", 1ull << 63}};
  for (const auto& [text, want] : cases) {
    auto got = parse_byte_size(text, "rate");
    ASSERT_TRUE(got.is_ok()) << text << ": " << got.status().message();
    EXPECT_EQ(*got, want) << text;
  }
}

TEST(ParseByteSize, RefusesQuotingTheTextAndNamingWhatItWasFor) {
  const std::pair<const char*, const char*> cases[] = {{"", "empty"},
                                                       {"-4K", "must not be negative"},
                                                       {"K", "expected a number"},
                                                       {"1.5M", "expected a number"},
                                                       {"4X", "expected a number"},
                                                       {"4 K", "expected a number"},
                                                       {"4KiBs", "expected a number"},
                                                       {"8388609T", "too large"},
                                                       {"9223372036854775809", "too large"},
                                                       {"99999999999999999999999", "too large"}};
  for (const auto& [text, why] : cases) {
    auto got = parse_byte_size(text, "region size");
    ASSERT_FALSE(got.is_ok()) << "\"" << text << "\" was accepted as " << *got;
    EXPECT_EQ(got.status().code(), EINVAL);
    const std::string& message = got.status().message();
    EXPECT_EQ(message.rfind("invalid region size \"" + std::string(text) + "\": ", 0), 0u)
        << message;
    EXPECT_NE(message.find(why), std::string::npos) << message;
  }
}

TEST(ParseByteSize, AcceptsExactlyTwoToTheSixtyThird) {
  EXPECT_EQ(*parse_byte_size("9223372036854775808", "x"), 1ull << 63);
  EXPECT_EQ(*parse_byte_size("8589934592G", "x"), 1ull << 63);
  EXPECT_FALSE(parse_byte_size("8589934593G", "x").is_ok());
}

TEST(FormatBytes, BinaryUnitsOneDecimal) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1024), "1.0 KiB");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(64ull << 20), "64.0 MiB");
  EXPECT_EQ(format_bytes((3ull << 30) / 2), "1.5 GiB");
  EXPECT_EQ(format_bytes(1ull << 40), "1.0 TiB");
  EXPECT_EQ(format_bytes(1ull << 50), "1.0 PiB");
  EXPECT_EQ(format_bytes(UINT64_MAX), "16384.0 PiB") << "PiB is the largest unit";
}

TEST(FormatDuration, SecondsMinutesHours) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(12.4), "12s");
  EXPECT_EQ(format_duration(59.6), "1m 00s");
  EXPECT_EQ(format_duration(245), "4m 05s");
  EXPECT_EQ(format_duration(3600), "1h 00m");
  EXPECT_EQ(format_duration(7380), "2h 03m");
  EXPECT_EQ(format_duration(-1), "unknown");
  EXPECT_EQ(format_duration(std::numeric_limits<double>::infinity()), "unknown");
  EXPECT_EQ(format_duration(std::numeric_limits<double>::quiet_NaN()), "unknown");
}

}  // namespace
}  // namespace clonefs
