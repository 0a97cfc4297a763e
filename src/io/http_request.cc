#include "io/http_request.h"

#include <cerrno>
#include <cstdlib>

#include "io/http_headers.h"
#include "io/trusted_file.h"

namespace clonefs {

Result<std::string> checked_source_ca(const std::string& path) {
  if (path.empty()) return std::string();
  const std::string role = std::string(kSourceCaVariable) + " (CA certificates)";
  // nbdkit opens it later, from another working directory.
  if (path.front() != '/')
    return Status::error(EINVAL, role + " " + path + " is not an absolute path");
  CLONEFS_RETURN_IF_ERROR(
      check_trusted_file(path, role, TrustedKind::kCertificates, current_trust_policy()));
  return path;
}

Result<HttpRequest> http_request_from_environment() {
  HttpRequest request;
  auto headers = source_headers_from_environment();
  if (!headers) return headers.status();
  request.headers = std::move(*headers);
  const char* ca = std::getenv(kSourceCaVariable);
  auto ca_file = checked_source_ca(ca == nullptr ? "" : ca);
  if (!ca_file) return ca_file.status();
  request.ca_file = std::move(*ca_file);
  return request;
}

}  // namespace clonefs
