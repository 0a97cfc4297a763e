// Telling a service manager how the mount went: systemd's Type=notify protocol (sd_notify),
// for the clonefs@.service unit, which runs `clonefs mount --foreground`. Outside a unit
// (NOTIFY_SOCKET unset) these do nothing.
#pragma once

#include <string>

#include "util/status.h"

namespace clonefs::cli {

// The one point where the mount is serving: READY=1 and a STATUS line naming the image.
void tell_service_manager_serving(const std::string& image);
// The mount failed before serving: STATUS=<the reason> (shown by `systemctl status`) and ERRNO.
void tell_service_manager_failed(const Status& status);

}  // namespace clonefs::cli
