// Byte counts as people type and read them: "64K", "1M", "1G" (binary units), "64.0 MiB".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace clonefs {

// Parses a plain byte count or one with a binary unit suffix: K, M, G, T (also KiB, MiB, ...;
// case-insensitive). Refuses negatives, fractions, garbage and values over 2^63, with a
// message quoting `text` and naming `what` ("region size", "rate").
Result<uint64_t> parse_byte_size(std::string_view text, std::string_view what);

// "512 B", "64.0 KiB", "1.5 GiB".
std::string format_bytes(uint64_t bytes);
// "2h 03m", "4m 05s", "12s"; "unknown" for a negative value.
std::string format_duration(double seconds);

}  // namespace clonefs
