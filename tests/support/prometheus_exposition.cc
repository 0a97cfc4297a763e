#include "support/prometheus_exposition.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>

namespace clonefs::testing {
namespace {

const std::string kName = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const std::string kLabelName = "[a-zA-Z_][a-zA-Z0-9_]*";
const std::string kLabelValue = R"("(?:[^"\\\n]|\\[\\"n])*")";

// The value grammar: a Go ParseFloat float, or +Inf, -Inf, NaN.
bool valid_value(const std::string& text, double& value) {
  if (text == "+Inf" || text == "Inf") return value = HUGE_VAL, true;
  if (text == "-Inf") return value = -HUGE_VAL, true;
  if (text == "NaN") return value = NAN, true;
  if (!std::regex_match(text, std::regex(R"([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)"))) return false;
  char* end = nullptr;
  value = std::strtod(text.c_str(), &end);
  return *end == '\0';
}

std::string unescape(const std::string& quoted) {
  std::string out;
  for (size_t i = 1; i + 1 < quoted.size(); ++i) {
    if (quoted[i] == '\\') {
      char next = quoted[++i];
      out += next == 'n' ? '\n' : next;
    } else {
      out += quoted[i];
    }
  }
  return out;
}

}  // namespace

std::vector<Sample> parse_exposition(const std::string& text) {
  const std::regex help("# HELP (" + kName + R"() ((?:[^\\\n]|\\[\\n])*))");
  const std::regex type("# TYPE (" + kName + ") (counter|gauge|histogram|summary|untyped)");
  const std::regex sample("(" + kName + R"()(?:\{((?:)" + kLabelName + "=" + kLabelValue + "(?:," +
                          kLabelName + "=" + kLabelValue + R"()*)?,?)\})? (\S+))");
  const std::regex label("(" + kLabelName + ")=(" + kLabelValue + ")");
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;
  std::set<std::string> helps, closed;
  std::set<std::string> label_sets;
  std::string current;
  EXPECT_TRUE(!text.empty() && text.back() == '\n') << "the exposition ends with a line feed";
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string where = "line " + std::to_string(number) + ": " + line;
    std::smatch m;
    if (std::regex_match(line, m, help)) {
      EXPECT_TRUE(helps.insert(m[1]).second) << "HELP twice, " << where;
      continue;
    }
    if (std::regex_match(line, m, type)) {
      EXPECT_TRUE(types.emplace(m[1], m[2]).second) << "TYPE twice, " << where;
      EXPECT_FALSE(closed.count(m[1])) << "TYPE after the family's samples, " << where;
      if (m[2] == "counter") {
        EXPECT_TRUE(std::string(m[1]).ends_with("_total")) << "counter without _total, " << where;
      }
      continue;
    }
    if (!std::regex_match(line, m, sample)) {
      ADD_FAILURE() << "not a valid exposition line, " << where;
      continue;
    }
    Sample s;
    s.family = m[1];
    EXPECT_TRUE(s.family.starts_with("clonefs_")) << where;
    EXPECT_TRUE(types.count(s.family)) << "sample before its TYPE, " << where;
    EXPECT_TRUE(helps.count(s.family)) << "sample without HELP, " << where;
    if (s.family != current) {
      EXPECT_FALSE(closed.count(s.family)) << "family's samples not contiguous, " << where;
      if (!current.empty()) closed.insert(current);
      current = s.family;
    }
    std::string labels = m[2];
    for (std::sregex_iterator it(labels.begin(), labels.end(), label), end; it != end; ++it) {
      EXPECT_TRUE(s.labels.emplace((*it)[1], unescape((*it)[2])).second)
          << "label twice, " << where;
    }
    std::string key = s.family;
    for (const auto& [k, v] : s.labels) key += "\x1f" + k + "=" + v;
    EXPECT_TRUE(label_sets.insert(key).second) << "the same series twice, " << where;
    EXPECT_TRUE(valid_value(m[3], s.value)) << "bad value, " << where;
    samples.push_back(std::move(s));
  }
  for (const auto& [family, kind] : types) {
    bool seen = false;
    for (const Sample& s : samples) seen |= s.family == family;
    EXPECT_TRUE(seen) << "TYPE without samples: " << family;
  }
  return samples;
}

std::optional<double> value_of(const std::vector<Sample>& samples, const std::string& family,
                               const std::string& key, const std::string& value) {
  for (const Sample& s : samples) {
    if (s.family != family) continue;
    if (!key.empty() && (!s.labels.count(key) || s.labels.at(key) != value)) continue;
    return s.value;
  }
  return std::nullopt;
}

}  // namespace clonefs::testing
