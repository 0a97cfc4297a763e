// Request headers an http(s) source needs (an Authorization token, a cookie), given in the
// environment: CLONEFS_SOURCE_HEADERS, one "Name: value" a line. They are secrets like the URL's
// query: they reach nbdkit only through the parameters memfd (io/curl_server.h), never a command
// line, and clonefs writes them nowhere (not META, log, status or metrics); an error names a
// header by its line and name, never its value. The variable is read by every process that opens
// the source (create, and mount's serving process and its successors), as CLONEFS_SOURCE_URI is.
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace clonefs {

inline constexpr const char* kSourceHeadersVariable = "CLONEFS_SOURCE_HEADERS";

// "Name: value" lines of `text` ("\n" or "\r\n" between them; blank lines skipped), checked: a
// name is an HTTP token, a value holds no control character but tab; no Range, Host or If-*
// header (clonefs asks for the ranges and sends If-Unmodified-Since itself: another one would
// change which bytes, or which file, the server answers with); at most 64 headers of 8 KiB.
Result<std::vector<std::string>> parse_source_headers(const std::string& text);

// parse_source_headers of the variable; none if it is unset.
Result<std::vector<std::string>> source_headers_from_environment();

}  // namespace clonefs
