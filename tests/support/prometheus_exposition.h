// A checker of Prometheus's text exposition format (version 0.0.4, what node_exporter's textfile
// collector parses), line by line, for `clonefs status --prometheus` and `--metrics-file` output.
// Its failures are gtest failures naming the line.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace clonefs::testing {

struct Sample {
  std::string family;
  std::map<std::string, std::string> labels;  // unescaped
  double value = 0;
};

// Parses and checks `text`; adds a test failure for each line that breaks a rule: comment lines
// are HELP or TYPE for a well-formed name; TYPE comes once per family, before its samples; a
// family's samples are contiguous and never repeat a label set; counters end in _total; every
// sample has a family with a TYPE and HELP, and a valid value; the text ends with a line feed.
std::vector<Sample> parse_exposition(const std::string& text);

// The value of `family`'s first sample whose label `key` is `value` (any sample if key is "").
std::optional<double> value_of(const std::vector<Sample>& samples, const std::string& family,
                               const std::string& key = "", const std::string& value = "");

}  // namespace clonefs::testing
