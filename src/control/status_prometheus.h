// A clone's status (control/status.h) in Prometheus's text exposition format (version 0.0.4),
// as `clonefs status --prometheus` prints it and `clonefs mount --metrics-file` keeps it: what
// node_exporter's textfile collector reads.
//
// Every sample carries the labels image (the mounted path; "" offline) and metadata. Families,
// all prefixed clonefs_ (names are stable, like the JSON fields; add, never rename):
//   info{source,destination} 1                 gauge: the paths recorded at create
//   image_size_bytes, region_size_bytes        gauge
//   regions, regions_valid, regions_uncommitted, regions_in_flight, valid_bytes   gauge
//   mounted, complete                          gauge, 0 or 1
//   metadata_mode{mode} 1 for the current mode gauge, one sample per mode (a state set)
//   hydration_paused, hydration_threshold_regions, hydration_batch_regions,
//   hydration_rate_limit_bytes_per_second      gauge: the controls (status's hydration_settings)
// live only (a mounted image):
//   hydration_state{state} 1 for the current   gauge, one sample per state
//   hydration_rate_bytes_per_second, hydration_failed_regions   gauge
//   hydration_eta_seconds                      gauge, absent while unknown
//   destination_syncs_total, metadata_commits_total, regions_copied_total,
//   regions_skipped_total, copied_bytes_total  counter, since the mount
#pragma once

#include <string>

#include "control/status.h"

namespace clonefs {

std::string format_status_prometheus(const CloneStatus& status);

}  // namespace clonefs
