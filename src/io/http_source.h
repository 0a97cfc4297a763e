// A source named by an http:// or https:// URL (an S3 object through a presigned https:// URL
// too): read over NBD from nbdkit's curl plugin, which clonefs runs itself (io/curl_server.h says
// how and why), with the NBD source's connection pool, reconnection and identity checks
// (io/nbd_source.h). What it adds: errors and status name the URL redacted (io/source_uri.h),
// and a file the server says was modified since the identity check (HTTP 412 to the
// If-Unmodified-Since every request carries) turns the source "changed" for good: hydration
// stops, every read of a region not yet in the destination fails with EIO at once, and no byte
// of the new file is ever returned.
#pragma once

#include <memory>
#include <string>

#include "io/devices.h"
#include "io/nbd_source.h"

namespace clonefs {

// Starts the server and connects to it as open_nbd_source does. A URL that cannot be read (404,
// connection refused, a name that does not resolve) fails here with curl's reason.
Result<std::unique_ptr<SourceDevice>> open_http_source(const std::string& url,
                                                       const NbdSourceOptions& options);

}  // namespace clonefs
