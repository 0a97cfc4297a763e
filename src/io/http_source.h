// A source named by an http:// or https:// URL (an S3 object through a presigned https:// URL
// too): read over NBD from nbdkit's curl plugin, which clonefs runs itself (io/curl_server.h says
// how and why), with the NBD source's connection pool, reconnection and identity checks
// (io/nbd_source.h). What it adds: errors and status name the URL redacted (io/source_uri.h),
// and a file the server says was modified since the identity check (HTTP 412 to the
// If-Unmodified-Since every request carries) turns the source "changed" for good: hydration
// stops, every read of a region not yet in the destination fails with EIO at once, and no byte
// of the new file is ever returned.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "io/devices.h"
#include "io/nbd_source.h"

namespace clonefs {

// Reads are cut into requests of up to this much (NbdSourceOptions::piece_bytes), not 256 KiB:
// nbdkit 1.32's curl plugin answers one request per connection at a time and its cache filter
// (--share-source) one at a time for the whole server, each an HTTP round trip. A 1 GiB golden
// behind a 10 ms link hydrated (--batch 256, 4 MiB copies) in 76.8 s through a shared server with
// 256 KiB requests and in 17.3 s with 4 MiB ones (own server: 18.8 s and 13.9 s; curl 5.3 s).
inline constexpr uint64_t kHttpPieceBytes = 4 << 20;

// Starts the server and connects to it as open_nbd_source does. A URL that cannot be read (404,
// connection refused, a name that does not resolve) fails here with curl's reason.
Result<std::unique_ptr<SourceDevice>> open_http_source(const std::string& url,
                                                       const NbdSourceOptions& options);

}  // namespace clonefs
