// What every request to an http(s) source carries besides its URL, given in the environment and
// read by every process that opens the source (create, and mount's serving process and its
// successors), as CLONEFS_SOURCE_URI is:
// - CLONEFS_SOURCE_HEADERS: request headers (io/http_headers.h);
// - CLONEFS_SOURCE_CA: the file of CA certificates (PEM) an https server's certificate is checked
//   against instead of the system's (/etc/ssl/certs), for an artifact server with a certificate
//   of the organisation's own CA. An absolute path; as root, a file no other user can write or
//   swap (io/trusted_file.h), since whoever can change it can have clonefs take their server for
//   the golden's. Not a secret: the path may appear in messages.
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace clonefs {

inline constexpr const char* kSourceCaVariable = "CLONEFS_SOURCE_CA";

struct HttpRequest {
  std::vector<std::string> headers;  // "Name: value"
  std::string ca_file;               // "": the system's CAs
};

// The CA file named by `path` (as CLONEFS_SOURCE_CA gives it), checked; "" for "".
Result<std::string> checked_source_ca(const std::string& path);

// CLONEFS_SOURCE_HEADERS and CLONEFS_SOURCE_CA, checked.
Result<HttpRequest> http_request_from_environment();

}  // namespace clonefs
