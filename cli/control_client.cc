#include "control_client.h"

#include <sys/xattr.h>

#include <cstring>
#include <vector>

#include "control/control_protocol.h"

namespace clonefs::cli {
namespace {

Status control_error(int err, const std::string& image) {
  switch (err) {
    case ENODATA:
    case ENOTSUP:
      return Status::error(err, image + " is not a mounted clonefs image");
    case ENOTCONN:
      return Status::error(err, image +
                                    " is a clonefs mount whose daemon is gone (killed or crashed); "
                                    "run 'clonefs unmount " +
                                    image + "' to clear it");
    case EACCES:
    case EPERM:
      return Status::error(
          err, image + ": only root or the user who mounted it may control this clonefs mount");
    default:
      return Status::from_errno(err, image);
  }
}

}  // namespace

Result<std::string> read_control(const std::string& image, const char* name) {
  // The status grows and shrinks while we ask: size it, read, and retry if it outgrew the buffer.
  for (int attempt = 0; attempt < 5; ++attempt) {
    ssize_t size = ::getxattr(image.c_str(), name, nullptr, 0);
    if (size < 0) return control_error(errno, image);
    std::vector<char> buf(static_cast<size_t>(size) + 4096);
    ssize_t n = ::getxattr(image.c_str(), name, buf.data(), buf.size());
    if (n >= 0) return std::string(buf.data(), static_cast<size_t>(n));
    if (errno != ERANGE) return control_error(errno, image);
  }
  return Status::error(EIO, image + ": control attribute " + name + " keeps changing size");
}

Status write_control(const std::string& image, const char* name, const std::string& value) {
  if (::setxattr(image.c_str(), name, value.data(), value.size(), 0) == 0) return Status::ok();
  int err = errno;
  if (err == EINVAL) return Status::error(EINVAL, image + ": the daemon refused \"" + value + "\"");
  if (err == EOPNOTSUPP) return control_error(ENOTSUP, image);
  return control_error(err, image);
}

Result<nlohmann::json> live_status_of(const std::string& image) {
  auto text = read_control(image, kStatusXattr);
  if (!text) return text.status();
  auto parsed = nlohmann::json::parse(*text, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Status::error(EIO, image + ": the daemon sent a status that is not JSON");
  }
  return parsed;
}

Result<int> daemon_pid(const std::string& image) {
  auto text = read_control(image, kPidXattr);
  if (!text) return text.status();
  int pid = std::atoi(text->c_str());
  if (pid <= 0) return Status::error(EIO, image + ": the daemon sent a bad pid \"" + *text + "\"");
  return pid;
}

}  // namespace clonefs::cli
