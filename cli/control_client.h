// The CLI's end of the control channel (control/control_protocol.h): extended attributes on a
// mounted IMAGE, with each failure turned into a sentence that names the image.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "util/status.h"

namespace clonefs::cli {

// Reads control attribute `name` from the daemon serving `image`. ENODATA/ENOTSUP: `image` is
// not a mounted clonefs image; ENOTCONN: its daemon is gone.
Result<std::string> read_control(const std::string& image, const char* name);
Status write_control(const std::string& image, const char* name, const std::string& value);

// The live status object of a mounted image.
Result<nlohmann::json> live_status_of(const std::string& image);
// The daemon's pid.
Result<int> daemon_pid(const std::string& image);

}  // namespace clonefs::cli
