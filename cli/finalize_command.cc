// clonefs finalize: once every region is valid, DEST alone is the image.
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "control/units.h"
#include "meta/metadata_store.h"

namespace clonefs::cli {
namespace {

struct FinalizeArgs {
  std::string metadata;
  bool remove_metadata = false;
};

Status remove_metadata_files(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::string file = path + suffix;
    if (::unlink(file.c_str()) != 0 && errno != ENOENT)
      return Status::from_errno(errno, "remove " + file);
  }
  return Status::ok();
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
    auto geometry = Geometry::make(record.image_size, record.region_size);
    if (!geometry) return fail(geometry.status().with_context("metadata " + args.metadata));
    RegionBitmap bitmap(geometry->region_count());
    if (Status loaded = (*store)->load(bitmap); !loaded) return fail(loaded);
    uint64_t missing = geometry->region_count() - bitmap.valid_count();
    if (missing > 0) {
      return fail(Status::error(
          EAGAIN, "cannot finalize " + args.metadata + ": " + std::to_string(missing) + " of " +
                      std::to_string(geometry->region_count()) +
                      " regions are still missing from " + record.destination_path +
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
    if (Status removed = remove_metadata_files(args.metadata); !removed) return fail(removed);
    std::printf("removed %s\n", args.metadata.c_str());
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
                "Delete the metadata file (and its -wal/-shm) afterwards");
  return {app, [args] { return run_finalize(*args); }};
}

}  // namespace clonefs::cli
