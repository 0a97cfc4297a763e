// The human form of a status (control/status.h): one aligned line per topic, as `clonefs status`
// prints it.
#pragma once

#include <string>

#include "control/status.h"

namespace clonefs {

// A short aligned table of `status`, live or offline: a live one (it has hydration) shows what
// is in flight and the hydrator's state; an offline one shows the controls saved for the next
// mount instead.
std::string format_status_table(const CloneStatus& status);

}  // namespace clonefs
