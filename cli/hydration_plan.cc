#include "hydration_plan.h"

#include <algorithm>

#include "control/control_client.h"
#include "control/control_protocol.h"
#include "engine/access_profile.h"
#include "io/file_extents.h"
#include "meta/geometry.h"
#include "meta/metadata_store.h"

namespace clonefs::cli {
namespace {

struct CloneShape {
  CloneRecord record;
  Geometry geometry;
};

// The record of the clone mounted at `image`, read from its metadata beside the daemon.
Result<CloneShape> clone_shape(const std::string& image) {
  auto status = live_status_of(image);
  if (!status) return status.status();
  auto store = MetadataStore::open(status->metadata, {.read_only = true});
  if (!store) return store.status();
  const CloneRecord record = (*store)->record();
  auto geometry = Geometry::make(record.image_size, record.region_size);
  if (!geometry) return geometry.status();
  return CloneShape{record, *geometry};
}

uint64_t regions_of(const std::vector<RegionRun>& runs) {
  uint64_t n = 0;
  for (const RegionRun& run : runs) n += run.count;
  return n;
}

Status send_plan(const std::string& image, const std::vector<RegionRun>& runs) {
  for (const std::string& request : format_plan_commands(runs)) {
    CLONEFS_RETURN_IF_ERROR(send_hydrate_command(image, request));
  }
  return Status::ok();
}

}  // namespace

Result<std::string> send_profile_plan(const std::string& image, const std::string& path) {
  auto shape = clone_shape(image);
  if (!shape) return shape.status();
  auto profile = read_profile(path);
  if (!profile) return profile.status();
  auto plan = profile_plan(*profile, path, shape->record, shape->geometry);
  if (!plan) return plan.status();
  CLONEFS_RETURN_IF_ERROR(send_plan(image, *plan));
  return std::to_string(regions_of(*plan)) + " regions of " + path + " (" +
         std::to_string(plan->size()) + " runs) queued first";
}

Result<std::string> send_files_plan(const std::string& image,
                                    const std::vector<std::string>& paths) {
  auto shape = clone_shape(image);
  if (!shape) return shape.status();
  auto found = image_extents_of_files(image, paths);
  if (!found) return found.status();
  // Runs of regions in the files' order, each region once (files share the regions at their
  // ends; a region holds many small files).
  std::vector<bool> planned(shape->geometry.region_count());
  std::vector<RegionRun> plan;
  for (const Extent& extent : found->extents) {
    if (extent.begin >= shape->geometry.image_size()) continue;
    const uint64_t end = std::min(extent.end, shape->geometry.image_size());
    for (uint64_t r = shape->geometry.region_of(extent.begin);
         r <= shape->geometry.region_of(end - 1); ++r) {
      if (planned[r]) continue;
      planned[r] = true;
      if (!plan.empty() && plan.back().first + plan.back().count == r) {
        ++plan.back().count;
      } else {
        plan.push_back({r, 1});
      }
    }
  }
  CLONEFS_RETURN_IF_ERROR(send_plan(image, plan));
  return std::to_string(regions_of(plan)) + " regions of " + std::to_string(found->files) +
         " files (" + std::to_string(found->extents.size()) + " extents) queued first";
}

}  // namespace clonefs::cli
