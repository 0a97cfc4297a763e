// A cheap identity for the source: tells two different images of the same size apart without
// reading them whole. It hashes the size, the first and last MiB and 64 samples of 64 KiB spread
// evenly across the image (about 6 MiB read, whatever the size). A change confined to bytes
// outside the samples goes unnoticed; the README says so.
#pragma once

#include <string>

#include "io/devices.h"

namespace clonefs {

// Hex string "v1:<16 hex digits>".
Result<std::string> source_fingerprint(SourceDevice& source);

}  // namespace clonefs
