// Sources named by a URI rather than a path: which names are URIs, and the form of a URI that can
// be shown and recorded. A password or key in a URI is a secret: metadata, logs and status only
// ever see the redacted form.
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace clonefs {

// Whether `name` is meant as a URI (it has a "scheme://"), whatever the scheme: such a name is
// never taken for a file path.
bool is_source_uri(const std::string& name);

// Whether `name` is an http:// or https:// URL (served through nbdkit's curl plugin, see
// io/http_source.h).
bool is_http_uri(const std::string& name);

// Refuses a URI clonefs cannot read from: a scheme other than http, https, nbd, nbds, nbd+unix,
// nbds+unix (saying what to use for s3, rbd...), an http(s) URL without a host, or an nbd+unix
// URI without its socket. libnbd and libcurl check the rest when connecting.
Status check_source_uri(const std::string& uri);

// `uri` with every secret replaced by "***": the password of user:password@ (even holding an
// unencoded '/', '?', '#' or '@'), and the values of query parameters ('&' or ';' separated)
// whose names, percent-decoded, end like a secret's (password, passwd, secret, token, key,
// credential, signature, sig); of an http(s) URL, the whole query ("?***"). Idempotent: the
// recorded form is compared with a redacted one.
std::string redact_uri(const std::string& uri);

// The secrets redact_uri hides, as written and percent-decoded: to scrub them from text another
// library wrote about `uri` (libnbd's errors quote the URI, or parts of it, raw).
std::vector<std::string> uri_secrets(const std::string& uri);
// `text` with `uri` replaced by its redacted form and every secret of it by "***".
std::string redact_text(std::string text, const std::string& uri);

// Where the full URI of a source recorded redacted comes from at mount: the environment variable
// CLONEFS_SOURCE_URI, accepted only if its redacted form is the recorded one.
inline constexpr const char* kSourceUriVariable = "CLONEFS_SOURCE_URI";
Result<std::string> source_uri_for_mount(const std::string& recorded);

}  // namespace clonefs
