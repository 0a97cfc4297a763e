// clonefs finalize: once every region is valid, DEST alone is the image.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <optional>

#include "app.h"
#include "control/units.h"
#include "io/safe_files.h"
#include "meta/database_files.h"
#include "meta/metadata_store.h"

namespace clonefs::cli {
namespace {

struct FinalizeArgs {
  std::string metadata;
  bool remove_metadata = false;
};

// The log a mount writes by default (mount's --log-file), if it is one: a file of that name the
// user wrote would not start with a log line (or be empty, as the mount leaves it when the
// daemon never got to log).
std::optional<std::string> default_log_of(const std::string& metadata) {
  std::string log = metadata + ".log";
  struct stat st {};
  if (::lstat(log.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  std::ifstream in(log);
  char first = '\0';
  in.get(first);
  if (st.st_size > 0 && first != '[') return std::nullopt;
  return log;
}

int run_finalize(const FinalizeArgs& args) {
  uint64_t image_size = 0;
  std::string destination;
  {
    // Read-write open: takes the lock a mount holds, so a mounted clone is refused.
    auto store = MetadataStore::open(args.metadata);
    if (!store) {
      if (store.status().code() == EBUSY) {
        return fail(store.status().with_context("cannot finalize (unmount the image first)"));
      }
      return fail(store.status());
    }
    const CloneRecord& record = (*store)->record();
    const Geometry& geometry = (*store)->geometry();
    RegionBitmap bitmap(geometry.region_count());
    if (Status loaded = (*store)->load(bitmap); !loaded) return fail(loaded);
    uint64_t missing = geometry.region_count() - bitmap.valid_count();
    if (missing > 0) {
      return fail(Status::error(
          EAGAIN, "cannot finalize " + args.metadata + ": " + std::to_string(missing) + " of " +
                      std::to_string(geometry.region_count()) + " regions are still missing from " +
                      record.destination_path +
                      "; mount it and run 'clonefs hydrate IMAGE --wait' first"));
    }
    image_size = record.image_size;
    destination = record.destination_path;
  }
  struct stat st {};
  if (::stat(destination.c_str(), &st) != 0)
    return fail(Status::from_errno(errno, "destination " + destination));
  std::printf(
      "%s is now a standalone raw image of %s (%llu bytes); the source and %s are no longer "
      "needed\n",
      destination.c_str(), format_bytes(image_size).c_str(),
      static_cast<unsigned long long>(image_size), args.metadata.c_str());
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > image_size) {
    warn("note: " + destination + " is larger than the image; the image is its first " +
         std::to_string(image_size) + " bytes");
  }
  if (args.remove_metadata) {
    if (Status removed = remove_database_files(args.metadata); !removed) return fail(removed);
    std::printf("removed %s\n", args.metadata.c_str());
    if (auto log = default_log_of(args.metadata)) {
      if (Status removed = remove_name(*log); !removed) return fail(removed);
      std::printf("removed %s (the mount's log)\n", log->c_str());
    }
  }
  return 0;
}

}  // namespace

Command add_finalize_command(CLI::App& root) {
  auto args = std::make_shared<FinalizeArgs>();
  CLI::App* app = root.add_subcommand(
      "finalize",
      "Check that an unmounted clone is complete (every region valid): its destination is then a\n"
      "standalone raw image. Refuses a mounted clone, and an incomplete one with the count "
      "missing.");
  app->add_option("--metadata", args->metadata, "The clone's metadata file")->required();
  app->add_flag("--remove-metadata", args->remove_metadata,
                "Delete the metadata file (and its -wal/-shm, and METADATA.log if the mount wrote "
                "its log there) afterwards");
  return {app, [args] { return run_finalize(*args); }};
}

}  // namespace clonefs::cli
