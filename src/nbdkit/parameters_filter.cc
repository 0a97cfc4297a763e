// An nbdkit filter that hands the plugin parameters read from a file instead of the command line:
// `--filter=/path/clonefs-parameters.so curl clonefs-parameters=FILE`, FILE holding
// "key=value" entries separated by NUL bytes. A process's command line is world-readable
// (/proc/PID/cmdline), and nbdkit's curl plugin takes its URL — a presigned URL's signature, a
// password in user:password@ — only as a parameter; clonefs gives it through a memfd this way
// (io/curl_server.h), so the URL never reaches nbdkit's argv. Nothing else is changed: every other
// parameter goes down the chain untouched.
#include <nbdkit-filter.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace {

constexpr const char* kKey = "clonefs-parameters";

int parameters_config(nbdkit_next_config* next, nbdkit_backend* nxdata, const char* key,
                      const char* value) {
  if (std::strcmp(key, kKey) != 0) return next(nxdata, key, value);
  FILE* file = std::fopen(value, "re");
  if (file == nullptr) {
    nbdkit_error("%s: cannot open %s: %m", kKey, value);
    return -1;
  }
  std::string all;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, file)) > 0;) all.append(buf, n);
  std::fclose(file);
  for (size_t at = 0; at < all.size();) {
    size_t end = all.find('\0', at);
    if (end == std::string::npos) end = all.size();
    std::string entry = all.substr(at, end - at);
    at = end + 1;
    if (entry.empty()) continue;
    size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) {
      nbdkit_error("%s: an entry is not key=value", kKey);
      return -1;
    }
    // Plugins keep pointers to their parameters for the life of the process (as to argv): these
    // copies are never freed.
    char* k = strdup(entry.substr(0, eq).c_str());
    char* v = strdup(entry.substr(eq + 1).c_str());
    if (k == nullptr || v == nullptr) {
      nbdkit_error("%s: out of memory", kKey);
      return -1;
    }
    if (next(nxdata, k, v) == -1) return -1;
  }
  return 0;
}

nbdkit_filter filter = {
    .name = "clonefs-parameters",
    .longname = "clonefs: plugin parameters from a file",
    .config = parameters_config,
    .config_help = "clonefs-parameters=FILE  key=value entries, NUL-separated, for the plugin.",
};

}  // namespace

NBDKIT_REGISTER_FILTER(filter)
