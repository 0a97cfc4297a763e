#include "control/control_client.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "control/control_protocol.h"
#include "io/unique_fd.h"

namespace clonefs {
namespace {

Status control_error(int err, const std::string& image) {
  switch (err) {
    case ENOTTY:
    case ENOSYS:
      return Status::error(ENOTTY, image + " is not a mounted clonefs image");
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

// Opens `image` for a control ioctl. Our request numbers mean nothing to other drivers, so only a
// regular file on a FUSE mount is ever sent one; O_NONBLOCK keeps a FIFO from blocking the open.
Result<std::unique_ptr<UniqueFd>> open_control(const std::string& image) {
  int fd = ::open(image.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return control_error(errno, image);
  auto control = std::make_unique<UniqueFd>(fd);
  struct stat st {};
  struct statfs fs {};
  if (::fstat(fd, &st) != 0 || ::fstatfs(fd, &fs) != 0) return control_error(errno, image);
  if (!S_ISREG(st.st_mode) || fs.f_type != FUSE_SUPER_MAGIC) return control_error(ENOTTY, image);
  return control;
}

}  // namespace

Result<CloneStatus> live_status_of(const std::string& image) {
  auto control = open_control(image);
  if (!control) return control.status();
  auto reply = std::make_unique<ControlText>();
  if (::ioctl((*control)->get(), kStatusIoctl, reply.get()) != 0)
    return control_error(errno, image);
  reply->text[sizeof reply->text - 1] = '\0';
  return parse_status(reply->text, image);
}

Result<int> daemon_pid(const std::string& image) {
  auto status = live_status_of(image);
  if (!status) return status.status();
  if (!status->pid) return Status::error(EIO, image + ": the daemon's status names no pid");
  return *status->pid;
}

Status send_hydrate_command(const std::string& image, const std::string& command) {
  auto control = open_control(image);
  if (!control) return control.status();
  auto request = std::make_unique<ControlText>();
  if (command.size() >= sizeof request->text) {
    return Status::error(EINVAL, image + ": hydration request too long");
  }
  std::memcpy(request->text, command.data(), command.size());
  if (::ioctl((*control)->get(), kHydrateIoctl, request.get()) == 0) return Status::ok();
  int err = errno;
  if (err == EINVAL)
    return Status::error(EINVAL, image + ": the daemon refused \"" + command + "\"");
  if (err == ENOTTY || err == ENOSYS || err == ENOTCONN || err == EACCES || err == EPERM) {
    return control_error(err, image);
  }
  return Status::error(err, image + ": \"" + command +
                                "\" is applied, but the daemon could not save it in " +
                                "the metadata, so the next mount will not start with it (" +
                                std::strerror(err) + "; see the daemon's log)");
}

}  // namespace clonefs
