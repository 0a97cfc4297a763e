#include "io/source_uri.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace clonefs {
namespace {

constexpr std::array<std::string_view, 4> kNbdSchemes = {"nbd", "nbds", "nbd+unix", "nbds+unix"};
constexpr std::array<std::string_view, 2> kHttpSchemes = {"http", "https"};
// Names of query parameters whose values are secrets (matched at the end of the name, so
// "access_key" and "api-token" count): over-redacting a harmless value costs nothing. "signature"
// and "sig" are presigned URLs' (S3's X-Amz-Signature, Azure's sig).
constexpr std::array<std::string_view, 8> kSecretNames = {
    "password", "passwd", "secret", "token", "key", "credential", "signature", "sig"};

std::string scheme_of(const std::string& uri) {
  size_t end = uri.find("://");
  return end == std::string::npos ? std::string() : uri.substr(0, end);
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoded (a malformed escape kept as is), as libnbd decodes names and values.
std::string percent_decoded(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex_digit(text[i + 1]) >= 0 &&
        hex_digit(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(text[i + 1]) * 16 + hex_digit(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

bool http_scheme(const std::string& scheme) {
  return std::find(kHttpSchemes.begin(), kHttpSchemes.end(), scheme) != kHttpSchemes.end();
}

bool secret_parameter(std::string_view raw_name) {
  std::string name = percent_decoded(raw_name);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) {
    return c == '_' ? '-' : static_cast<char>(std::tolower(c));
  });
  // "credentials" as well as "credential".
  if (ends_with(name, "s")) name.pop_back();
  return std::any_of(kSecretNames.begin(), kSecretNames.end(),
                     [&](std::string_view secret) { return ends_with(name, secret); });
}

// HOST, HOST:PORT or [IPV6]:PORT: what may follow the '@' ending a userinfo.
bool host_like(std::string_view text) {
  if (text.empty()) return false;
  return std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':' || c == '[' ||
           c == ']' || c == '%';
  });
}

// Where the password of USER:PASSWORD@HOST lies, if there is one: [begin, end). A password may
// hold an unencoded '/', '?', '#' or '@' (libnbd would fail to parse it, and print it), so the
// userinfo is taken to end at the last '@' followed by something host-like, not at the first
// delimiter: when in doubt, more is hidden.
std::optional<std::pair<size_t, size_t>> password_span(const std::string& uri) {
  size_t start = uri.find("://");
  if (start == std::string::npos) return std::nullopt;
  start += 3;
  size_t colon = uri.find(':', start);
  if (colon == std::string::npos) return std::nullopt;
  // The user name: no delimiter in it (nbd+unix:///x?socket=/a:b@c has none).
  if (uri.find_first_of("/?#@", start) < colon) return std::nullopt;
  for (size_t at = uri.rfind('@'); at != std::string::npos && at > colon;
       at = at == 0 ? std::string::npos : uri.rfind('@', at - 1)) {
    size_t host_end = uri.find_first_of("/?#", at + 1);
    if (host_end == std::string::npos) host_end = uri.size();
    if (host_like(std::string_view(uri).substr(at + 1, host_end - at - 1)))
      return std::make_pair(colon + 1, at);
  }
  return std::nullopt;
}

// The query's parameters, separated by '&' or ';' (both are in use): [begin, end) of each.
std::vector<std::pair<size_t, size_t>> parameters(const std::string& uri, size_t query) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t begin = query + 1;
  while (true) {
    size_t end = uri.find_first_of("&;", begin);
    if (end == std::string::npos) end = uri.size();
    out.emplace_back(begin, end);
    if (end == uri.size()) break;
    begin = end + 1;
  }
  return out;
}

}  // namespace

bool is_source_uri(const std::string& name) {
  std::string scheme = scheme_of(name);
  return !scheme.empty() && scheme.find('/') == std::string::npos;
}

bool is_http_uri(const std::string& name) { return http_scheme(scheme_of(name)); }

Status check_source_uri(const std::string& uri) {
  const std::string scheme = scheme_of(uri);
  const std::string shown = redact_uri(uri);
  if (http_scheme(scheme)) {
    size_t host = uri.find("://") + 3;
    if (host >= uri.size() || uri[host] == '/' || uri[host] == '?')
      return Status::error(EINVAL, "source " + shown + ": no host in the URL");
    return Status::ok();
  }
  if (std::find(kNbdSchemes.begin(), kNbdSchemes.end(), scheme) == kNbdSchemes.end()) {
    return Status::error(EINVAL, "source " + shown + ": unsupported URI scheme \"" + scheme +
                                     "\" (clonefs reads http://, https://, nbd://, nbds://, "
                                     "nbd+unix:// and nbds+unix://; an S3 object through a "
                                     "presigned https:// URL; serve other sources over NBD, e.g. "
                                     "qemu-nbd for qcow2 or rbd)");
  }
  if (scheme.find("+unix") != std::string::npos && uri.find("socket=") == std::string::npos) {
    return Status::error(EINVAL, "source " + shown +
                                     ": an nbd+unix URI needs ?socket=PATH (e.g. "
                                     "nbd+unix:///export?socket=/run/golden.sock)");
  }
  return Status::ok();
}

// A '#' in the query is kept as part of a value, not split off as a fragment: NBD URIs have no
// use for fragments, and an unencoded '#' in a secret must not leave the rest of it in clear.
// An http(s) URL's query is hidden whole: a presigned URL's parameters (signature, credential,
// expiry) are all its secret, and a URL signed again for a later mount redacts the same.
std::string redact_uri(const std::string& uri) {
  std::string out = uri;
  if (auto password = password_span(out))
    out.replace(password->first, password->second - password->first, "***");
  size_t start = out.find("://");
  size_t query = out.find('?', start == std::string::npos ? 0 : start + 3);
  if (query == std::string::npos) return out;
  if (http_scheme(scheme_of(out))) return out.substr(0, query + 1) + "***";
  std::string rebuilt = out.substr(0, query + 1);
  for (auto [begin, end] : parameters(out, query)) {
    std::string_view param = std::string_view(out).substr(begin, end - begin);
    size_t eq = param.find('=');
    if (eq != std::string_view::npos && secret_parameter(param.substr(0, eq)))
      rebuilt += std::string(param.substr(0, eq + 1)) + "***";
    else
      rebuilt += param;
    if (end < out.size()) rebuilt += out[end];
  }
  return rebuilt;
}

std::vector<std::string> uri_secrets(const std::string& uri) {
  std::vector<std::string> raw;
  if (auto password = password_span(uri))
    raw.push_back(uri.substr(password->first, password->second - password->first));
  size_t start = uri.find("://");
  size_t query = uri.find('?', start == std::string::npos ? 0 : start + 3);
  if (query != std::string::npos && http_scheme(scheme_of(uri)) && query + 1 < uri.size())
    raw.push_back(uri.substr(query + 1));
  if (query != std::string::npos) {
    for (auto [begin, end] : parameters(uri, query)) {
      std::string_view param = std::string_view(uri).substr(begin, end - begin);
      size_t eq = param.find('=');
      if (eq != std::string_view::npos && secret_parameter(param.substr(0, eq)))
        raw.emplace_back(param.substr(eq + 1));
    }
  }
  // Each once, and none made of stars only: redact_text replaces a secret with "***", so a secret
  // of stars would be found again in every "***" already put in, and the text would grow
  // threefold per such secret (found by tests/fuzz); stars hide nothing the redacted form shows.
  std::vector<std::string> out;
  auto add = [&out](std::string secret) {
    if (secret.find_first_not_of('*') == std::string::npos) return;
    if (std::find(out.begin(), out.end(), secret) == out.end()) out.push_back(std::move(secret));
  };
  for (const std::string& secret : raw) {
    add(secret);
    add(percent_decoded(secret));
  }
  return out;
}

std::string redact_text(std::string text, const std::string& uri) {
  const std::string shown = redact_uri(uri);
  if (shown == uri) return text;
  // Each search goes on after what it put in: a replacement may contain what it replaced.
  auto replace_all = [&](const std::string& from, const std::string& to) {
    for (size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size())
      text.replace(at, from.size(), to);
  };
  replace_all(uri, shown);
  for (const std::string& secret : uri_secrets(uri)) replace_all(secret, "***");
  return text;
}

Result<std::string> source_uri_for_mount(const std::string& recorded) {
  if (recorded.find("***") == std::string::npos) return recorded;
  const char* full = std::getenv(kSourceUriVariable);
  if (full == nullptr || *full == '\0') {
    return Status::error(EINVAL, "source " + recorded + " was recorded without its secrets: set " +
                                     kSourceUriVariable + " to the full URI to mount it");
  }
  if (redact_uri(full) != recorded) {
    return Status::error(EINVAL, std::string(kSourceUriVariable) + " names " + redact_uri(full) +
                                     ", not the clone's source " + recorded);
  }
  return std::string(full);
}

}  // namespace clonefs
