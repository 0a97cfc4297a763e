// What a serving process of a supervised mount takes over from the ones before it: the regions a
// killed predecessor made valid (engine/surviving_regions.h), and for the supervisor, from the
// first one, the description of the destination that confirms those regions' syncs.
#pragma once

#include <spdlog/logger.h>

#include "engine/clone.h"
#include "fuse/supervision.h"
#include "util/status.h"

namespace clonefs {

// What a killed predecessor made valid is valid here too, before any request is served. A
// successor that cannot adopt it must not serve. Nothing to do unsupervised (`supervision` null).
Status adopt_surviving_regions(const Supervision* supervision, Clone& clone, spdlog::logger& log);

}  // namespace clonefs
