// The URI rules on any text: which names are URIs, which are refused, and redaction. Redacting
// twice changes nothing (the recorded form is compared with a redacted one at mount); the
// redacted form keeps no secret redact_uri found; scrubbing text about the URI terminates and
// leaves neither the URI (when it held a secret) nor a secret in it.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "io/source_uri.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string uri(reinterpret_cast<const char*>(data), size);
  (void)clonefs::is_source_uri(uri);
  (void)clonefs::check_source_uri(uri);
  const std::string once = clonefs::redact_uri(uri);
  if (clonefs::redact_uri(once) != once) std::abort();
  const auto secrets = clonefs::uri_secrets(uri);
  const std::string said = clonefs::redact_text("failed: " + uri + " (" + uri + ")", uri);
  for (const std::string& secret : secrets) {
    if (secret.find('*') == std::string::npos && said.find(secret) != std::string::npos)
      std::abort();
  }
  // The URI is gone, unless its redacted form holds it (a secret parameter with an empty value,
  // "token=", redacts to "token=***": nothing was hidden, nothing leaks).
  if (once != uri && once.find(uri) == std::string::npos && said.find(uri) != std::string::npos)
    std::abort();
  return 0;
}
