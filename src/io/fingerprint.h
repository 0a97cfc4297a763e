// A cheap identity for the source: tells two different images of the same size apart without
// reading them whole. It hashes the size, the first and last MiB and 64 samples of 64 KiB spread
// evenly across the image (about 6 MiB read, whatever the size). A change confined to bytes
// outside the samples goes unnoticed; the README says so.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "io/devices.h"

namespace clonefs {

// Hex string "v1:<16 hex digits>".
Result<std::string> source_fingerprint(SourceDevice& source);

// The same, for a reader that fetches the pieces itself (a remote source checking a connection
// with all of them in flight at once): the byte ranges read, in the order they are hashed, and
// the fingerprint of their bytes laid end to end in that order.
std::vector<Extent> fingerprint_pieces(uint64_t size);
std::string fingerprint_of(uint64_t size, std::span<const std::byte> pieces);

}  // namespace clonefs
