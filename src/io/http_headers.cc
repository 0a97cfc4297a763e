#include "io/http_headers.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

namespace clonefs {
namespace {

constexpr size_t kMaxHeaders = 64;
constexpr size_t kMaxHeaderBytes = 8192;

// RFC 9110 token characters.
bool is_token_char(unsigned char c) {
  return std::isalnum(c) != 0 || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trimmed(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

Status refused(size_t line, const std::string& why) {
  return Status::error(
      EINVAL, std::string(kSourceHeadersVariable) + ": line " + std::to_string(line) + " " + why);
}

}  // namespace

Result<std::vector<std::string>> parse_source_headers(const std::string& text) {
  std::vector<std::string> headers;
  size_t number = 0;
  for (size_t at = 0; at <= text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(at, end - at);
    at = end + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trimmed(line).empty()) continue;
    // Only the line's number and the name from here on: the value is the secret.
    const size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) return refused(number, "is not \"Name: value\"");
    const std::string name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(),
                     [](char c) { return is_token_char(static_cast<unsigned char>(c)); }))
      return refused(number, "has a header name that is not an HTTP token");
    const std::string value = trimmed(line.substr(colon + 1));
    if (std::any_of(value.begin(), value.end(), [](char c) {
          const auto u = static_cast<unsigned char>(c);
          return (u < 0x20 && u != '\t') || u == 0x7f;
        }))
      return refused(number, "(" + name + ") has a control character in its value");
    const std::string lower = lowercase(name);
    if (lower == "range" || lower == "host" || lower.rfind("if-", 0) == 0)
      return refused(number, "(" + name +
                                 ") is a header clonefs sets itself or that would change which "
                                 "bytes the server answers with");
    if (line.size() > kMaxHeaderBytes)
      return refused(number,
                     "(" + name + ") is longer than " + std::to_string(kMaxHeaderBytes) + " bytes");
    if (headers.size() == kMaxHeaders)
      return refused(number, "is one header more than " + std::to_string(kMaxHeaders));
    headers.push_back(name + ": " + value);
  }
  return headers;
}

Result<std::vector<std::string>> source_headers_from_environment() {
  const char* text = std::getenv(kSourceHeadersVariable);
  if (text == nullptr) return std::vector<std::string>{};
  return parse_source_headers(text);
}

}  // namespace clonefs
