// The access-profile parser (docs/PROFILE.md) on any text: OK or one refusal, never a crash; a
// profile it accepts formats to text it reads back as the same profile.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/access_profile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto parsed = clonefs::parse_profile(text, "fuzz");
  if (!parsed.is_ok()) {
    if (parsed.status().code() == 0 || parsed.status().message().empty()) std::abort();
    return 0;
  }
  auto again = clonefs::parse_profile(clonefs::format_profile(*parsed), "fuzz");
  if (!again.is_ok()) std::abort();
  if (again->source_size != parsed->source_size ||
      again->source_fingerprint != parsed->source_fingerprint ||
      again->region_size != parsed->region_size || again->runs != parsed->runs)
    std::abort();
  return 0;
}
