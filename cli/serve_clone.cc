#include "serve_clone.h"

#include <optional>

#include "control/status_prometheus.h"
#include "daemon/hydration_control.h"
#include "daemon/status_report.h"
#include "engine/clone.h"
#include "engine/hydrator.h"
#include "fuse/held_image.h"
#include "fuse/mount_profiles.h"
#include "fuse/predecessors.h"

namespace clonefs::cli {
namespace {

// The engine's options, and where its complaints go: the log.
OpenOptions open_options_for(const CloneServeOptions& options, spdlog::logger& log) {
  OpenOptions open_options;
  open_options.engine.copy_on_read = options.copy_on_read;
  open_options.nbd = options.nbd;
  open_options.engine.on_commit_failure = [&log](const Status& failed) {
    log.error("periodic commit failed, metadata is read-only until remounted: {}",
              failed.message());
  };
  open_options.engine.best_copy_method = options.best_copy_method;
  open_options.engine.on_copy_fallback = [&log](CopyMethod from, CopyMethod to, const Status& why) {
    log.warn("hydration copies by {} from now on, {} does not apply: {}", to_string(to),
             to_string(from), why.message());
  };
  return open_options;
}

// Once the mount is ready: hydration starts as the settings say, and the log tells how the clone
// is served.
void start_hydrating(const CloneServeOptions& options, const HydrationSettings& settings,
                     Clone& clone, Hydrator& hydrator, spdlog::logger& log) {
  hydrator.set_paused(settings.paused);
  log.info(
      "serving {} on {} (hydration {}, threshold {}, batch {}, rate limit {} B/s; "
      "copy-on-read {}; copy method {}, best allowed {})",
      options.metadata_path, options.image.image_path, settings.paused ? "paused" : "on",
      settings.threshold, settings.batch, settings.rate, options.copy_on_read ? "on" : "off",
      to_string(clone.engine().copy_method()), to_string(options.best_copy_method));
}

// After the session: stop copying, then the final commit. The metadata is final once this
// returns.
int close_clone(Clone& clone, Hydrator& hydrator, spdlog::logger& log) {
  // A copy waiting for an unreachable remote source would hold the unmount up to its timeout.
  clone.source().cancel_waits();
  hydrator.stop();
  Status closed = clone.engine().close();
  EngineStatus s = clone.engine().status();
  if (!closed) {
    log.error("final commit failed: {}", closed.message());
    return 1;
  }
  log.info("final commit done: {} of {} regions valid", s.regions_valid, s.regions_total);
  return 0;
}

// A serving process's life, top to bottom: the setup in order, then the teardown in reverse
// order.
int serve_until_unmounted(const CloneServeOptions& options) {
  const ServeOptions& serving = options.image;
  spdlog::logger& log = *serving.logger;
  const HeldConnection* inherited = inherited_connection(serving.supervision);
  // Whoever waits for the mount learns why it could not start.
  auto failed = [&serving](const Status& why) {
    serving.report(why);
    return 1;
  };
  // 1. The clone, every check made (engine/clone.h), and what killed predecessors made valid.
  const OpenOptions open_options = open_options_for(options, log);
  auto clone = Clone::open(options.metadata_path, open_options);
  if (!clone) return failed(clone.status());
  if (Status adopted = adopt_surviving_regions(serving.supervision, **clone, log); !adopted)
    return failed(adopted);
  // 2. The profile to hydrate first and the hydration settings, before anything is saved: a
  // profile of another source changes nothing.
  auto plan = profile_hydration_plan(options.profile_path, **clone);
  if (!plan) return failed(plan.status());
  auto settings = settings_for_mount((*clone)->metadata(), options.hydration_controls);
  if (!settings) return failed(settings.status());
  // 3. IMAGE, held (or, for a successor, the attributes of the one mounted over).
  auto mount_point = hold_image(serving.image_path, options.metadata_path, **clone, inherited);
  if (!mount_point) return failed(mount_point.status());
  // 4. Hydration, paused until the mount is up (nothing to copy for if mounting fails), and the
  // recording of this mount's profile.
  HydrationSettings held = *settings;
  held.paused = true;
  Hydrator hydrator((*clone)->engine(), held);
  if (!plan->empty()) hydrator.set_plan(std::move(*plan));
  hydrator.set_on_demand(options.on_demand_priority);
  ProfileRecording recording(options.record_profile_path, **clone, inherited != nullptr, log);
  // 5. IMAGE served until unmounted; once the mount is ready, hydration starts.
  const SessionEnd end =
      serve_image(serving, {**clone, hydrator, *mount_point, options.metadata_path,
                            [&] { start_hydrating(options, *settings, **clone, hydrator, log); }});
  // The teardown, in reverse order.
  if (!end.startup) {
    remove_created_image(*mount_point, serving.image_path, log);
    recording.abandon();
    hydrator.stop();
    (void)(*clone)->engine().close();
    return failed(end.startup);
  }
  recording.finish();
  int rc = close_clone(**clone, hydrator, log);
  // A supervised mount's supervisor removes it (`clonefs unmount` tells the user).
  if (serving.supervision == nullptr) remove_created_image(*mount_point, serving.image_path, log);
  return end.loop_rc < 0 || !end.ready ? 1 : rc;
}

// Once the clone is closed, the metrics file shows what a collector should keep: the committed
// state, not mounted (the live figures of a daemon that is gone would look current).
void write_final_metrics(const CloneServeOptions& options) {
  auto status = offline_status(options.metadata_path);
  Status written =
      status ? write_file_atomically(options.image.metrics_file, format_status_prometheus(*status))
             : status.status();
  if (!written) options.image.logger->warn("final metrics not written: {}", written.message());
}

}  // namespace

int serve_clone(const CloneServeOptions& options) {
  int rc = serve_until_unmounted(options);
  if (!options.image.metrics_file.empty()) write_final_metrics(options);
  return rc;
}

}  // namespace clonefs::cli
