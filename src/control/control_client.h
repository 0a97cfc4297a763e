// The CLI's end of the control channel (control_protocol.h): ioctls on a mounted IMAGE, with each
// failure turned into a sentence that names the image.
#pragma once

#include <string>

#include "control/status.h"
#include "util/status.h"

namespace clonefs {

// ENOTTY: `image` is not a mounted clonefs image (no ioctl is sent to anything but a regular file
// on a FUSE mount); ENOTCONN: its daemon is gone; EACCES: another user's mount; EIO naming the
// field: the daemon's status is malformed.
Result<CloneStatus> live_status_of(const std::string& image);
// The daemon's pid, from its status.
Result<int> daemon_pid(const std::string& image);
// Sends one hydration request (control_protocol.h); EINVAL if the daemon refused it.
Status send_hydrate_command(const std::string& image, const std::string& command);

}  // namespace clonefs
