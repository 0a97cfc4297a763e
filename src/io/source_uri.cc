#include "io/source_uri.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <string_view>

namespace clonefs {
namespace {

constexpr std::array<std::string_view, 4> kNbdSchemes = {"nbd", "nbds", "nbd+unix", "nbds+unix"};
constexpr std::array<std::string_view, 4> kSecretNames = {"password", "secret", "token", "key"};

std::string scheme_of(const std::string& uri) {
  size_t end = uri.find("://");
  return end == std::string::npos ? std::string() : uri.substr(0, end);
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool secret_parameter(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) {
    return c == '_' ? '-' : static_cast<char>(std::tolower(c));
  });
  return std::any_of(kSecretNames.begin(), kSecretNames.end(),
                     [&](std::string_view secret) { return ends_with(name, secret); });
}

}  // namespace

bool is_source_uri(const std::string& name) {
  std::string scheme = scheme_of(name);
  return !scheme.empty() && scheme.find('/') == std::string::npos;
}

Status check_source_uri(const std::string& uri) {
  const std::string scheme = scheme_of(uri);
  const std::string shown = redact_uri(uri);
  if (std::find(kNbdSchemes.begin(), kNbdSchemes.end(), scheme) == kNbdSchemes.end()) {
    return Status::error(EINVAL, "source " + shown + ": unsupported URI scheme \"" + scheme +
                                     "\" (clonefs reads nbd://, nbds://, nbd+unix:// and "
                                     "nbds+unix://; serve other sources over NBD, e.g. nbdkit "
                                     "curl for http(s), nbdkit S3, qemu-nbd for qcow2 or rbd)");
  }
  if (scheme.find("+unix") != std::string::npos && uri.find("socket=") == std::string::npos) {
    return Status::error(EINVAL, "source " + shown +
                                     ": an nbd+unix URI needs ?socket=PATH (e.g. "
                                     "nbd+unix:///export?socket=/run/golden.sock)");
  }
  return Status::ok();
}

std::string redact_uri(const std::string& uri) {
  std::string out = uri;
  // user:password@ in the authority.
  if (size_t start = out.find("://"); start != std::string::npos) {
    start += 3;
    size_t end = out.find_first_of("/?#", start);
    if (end == std::string::npos) end = out.size();
    size_t at = out.rfind('@', end);
    if (at != std::string::npos && at >= start) {
      size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // Secret-looking query parameters.
  size_t query = out.find('?');
  if (query == std::string::npos) return out;
  std::string rebuilt = out.substr(0, query + 1);
  std::string_view rest = std::string_view(out).substr(query + 1);
  std::string_view fragment;
  if (size_t hash = rest.find('#'); hash != std::string_view::npos) {
    fragment = rest.substr(hash);
    rest = rest.substr(0, hash);
  }
  bool first = true;
  while (true) {
    size_t amp = rest.find('&');
    std::string_view param = rest.substr(0, amp);
    size_t eq = param.find('=');
    if (!first) rebuilt += '&';
    first = false;
    if (eq != std::string_view::npos && secret_parameter(std::string(param.substr(0, eq)))) {
      rebuilt += std::string(param.substr(0, eq + 1)) + "***";
    } else {
      rebuilt += param;
    }
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return rebuilt + std::string(fragment);
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
