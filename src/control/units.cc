#include "control/units.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

namespace clonefs {
namespace {

// Shift for a unit suffix (lower-cased), or -1 when it is not one.
int unit_shift(std::string suffix) {
  for (char& c : suffix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (suffix.empty() || suffix == "b") return 0;
  const std::pair<const char*, int> units[] = {{"k", 10}, {"m", 20}, {"g", 30}, {"t", 40}};
  for (const auto& [letter, shift] : units) {
    std::string l = letter;
    if (suffix == l || suffix == l + "b" || suffix == l + "ib") return shift;
  }
  return -1;
}

}  // namespace

Result<uint64_t> parse_byte_size(std::string_view text, std::string_view what) {
  auto invalid = [&](const std::string& why) {
    return Status::error(EINVAL,
                         "invalid " + std::string(what) + " \"" + std::string(text) + "\": " + why);
  };
  if (text.empty()) return invalid("empty");
  if (text.front() == '-') return invalid("must not be negative");
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0)
    return invalid("expected a number of bytes with an optional unit (4K, 64K, 1M, 1G)");
  uint64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, number);
  if (ec == std::errc::result_out_of_range) return invalid("too large");
  int shift = unit_shift(std::string(text.substr(digits)));
  if (ec != std::errc() || end != text.data() + digits || shift < 0) {
    return invalid("expected a number of bytes with an optional unit (4K, 64K, 1M, 1G)");
  }
  constexpr uint64_t kLimit = uint64_t{1} << 63;
  if (number > (kLimit >> shift)) return invalid("too large");
  return number << shift;
}

std::string format_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
  return text;
}

std::string format_duration(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) return "unknown";
  auto total = static_cast<uint64_t>(std::llround(seconds));
  char text[48];
  if (total >= 3600) {
    std::snprintf(text, sizeof text, "%lluh %02llum", static_cast<unsigned long long>(total / 3600),
                  static_cast<unsigned long long>(total % 3600 / 60));
  } else if (total >= 60) {
    std::snprintf(text, sizeof text, "%llum %02llus", static_cast<unsigned long long>(total / 60),
                  static_cast<unsigned long long>(total % 60));
  } else {
    std::snprintf(text, sizeof text, "%llus", static_cast<unsigned long long>(total));
  }
  return text;
}

}  // namespace clonefs
