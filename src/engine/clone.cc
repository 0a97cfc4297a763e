#include "engine/clone.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "io/existing_content.h"
#include "io/fingerprint.h"
#include "io/http_source.h"
#include "io/paths.h"
#include "io/posix_devices.h"
#include "io/safe_files.h"
#include "io/source_uri.h"
#include "io/storage_identity.h"
#include "io/trusted_file.h"

namespace clonefs {
namespace {

// Three different storages, compared by identity rather than by name: a destination that is the
// source would write into the golden image, and a metadata file on either would be overwritten by
// SQLite (or would overwrite it: create renames a new metadata file into place).
// A URI source names no local storage to compare (a local server's file is out of sight behind
// the socket).
Status check_distinct_files(const std::string& source, const std::string& destination,
                            const std::string& metadata) {
  std::vector<StorageRole> roles = {{"destination", destination}, {"metadata", metadata}};
  if (!is_source_uri(source)) roles.push_back({"source", source});
  return require_distinct_storage(roles);
}

// A path opens the file or block device; a URI connects to the NBD server, or starts one for an
// http(s) URL (with the secrets the recorded form lacks, see source_uri_for_mount).
Result<std::unique_ptr<SourceDevice>> open_any_source(const std::string& name,
                                                      const NbdSourceOptions& nbd) {
  if (nbd.share && !is_http_uri(name)) {
    return Status::error(EINVAL, "--share-source applies to http(s) sources only; source " +
                                     redact_uri(name) + " is not one");
  }
  if (!is_source_uri(name)) return open_source(name);
  if (is_http_uri(name)) return open_http_source(name, nbd);
  return open_nbd_source(name, nbd);
}

// A destination that already holds something is somebody's image until --force says otherwise.
Status check_destination_holds_nothing(const std::string& destination) {
  auto content = existing_content(destination);
  if (!content) return content.status().with_context("destination");
  if (*content) {
    return Status::error(
        EEXIST, "destination " + destination + " " + **content + "; pass --force to overwrite it");
  }
  return Status::ok();
}

// At create (an existing destination) and at every mount (it may have been truncated since).
Status check_destination_size(const DestinationDevice& destination, const std::string& path,
                              uint64_t image_size) {
  if (destination.size() >= image_size) return Status::ok();
  return Status::error(EINVAL, "destination " + path + " is " + std::to_string(destination.size()) +
                                   " bytes, smaller than the image (" + std::to_string(image_size) +
                                   " bytes)");
}

}  // namespace

Status check_source_identity(SourceDevice& source, const CloneRecord& record) {
  if (source.size() != record.source_size) {
    return Status::error(
        EINVAL, "source " + source.name() + " is " + std::to_string(source.size()) +
                    " bytes but the clone was created from " + std::to_string(record.source_size) +
                    " bytes: it is not the same image");
  }
  auto fingerprint = source_fingerprint(source);
  if (!fingerprint) return fingerprint.status();
  if (*fingerprint != record.source_fingerprint) {
    return Status::error(EINVAL, "source " + source.name() +
                                     " has changed since the clone was created (fingerprint " +
                                     *fingerprint + ", recorded " + record.source_fingerprint +
                                     ")");
  }
  return Status::ok();
}

Status create_clone(const CreateOptions& options) {
  NbdSourceOptions nbd;
  nbd.share = options.share_source;
  auto source = open_any_source(options.source_path, nbd);
  if (!source) return source.status();
  const uint64_t image_size = (*source)->size();
  auto geometry = Geometry::make(image_size, options.region_size);
  if (!geometry) return geometry.status();
  CLONEFS_RETURN_IF_ERROR(
      check_distinct_files(options.source_path, options.destination_path, options.metadata_path));
  struct stat st {};
  if (!options.force && ::stat(options.metadata_path.c_str(), &st) == 0) {
    return Status::error(EEXIST, "metadata " + options.metadata_path +
                                     " already exists (pass --force to replace it)");
  }
  if (!options.force) {
    CLONEFS_RETURN_IF_ERROR(check_destination_holds_nothing(options.destination_path));
  }
  auto fingerprint = source_fingerprint(**source);
  if (!fingerprint) return fingerprint.status();

  bool existed = ::lstat(options.destination_path.c_str(), &st) == 0;
  // Recorded for root's mounts to write: not one another user owns or can swap (Clone::open
  // checks it again, the path may lead elsewhere by then).
  if (existed) {
    CLONEFS_RETURN_IF_ERROR(check_trusted_file(options.destination_path, "destination",
                                               TrustedKind::kDestination, current_trust_policy()));
  }
  auto destination = open_destination(
      options.destination_path, NewDestination{image_size, clone_permissions(options.source_path)});
  if (!destination) return destination.status();
  struct stat created {};
  if (!existed && ::lstat(options.destination_path.c_str(), &created) != 0) created = {};
  // Only the very file created here is removed again, never what another user put in its place.
  auto remove_created = [&] {
    auto entry = DirectoryEntry::open(options.destination_path);
    if (entry) static_cast<void>(entry->remove_if_same(created.st_dev, created.st_ino));
  };
  if (!existed) {
    // A metadata path that only now names something (the same path, or a symlink to the new
    // destination) would have SQLite replace the destination just made.
    Status distinct =
        check_distinct_files(options.source_path, options.destination_path, options.metadata_path);
    if (!distinct) {
      remove_created();
      return distinct;
    }
  }
  CLONEFS_RETURN_IF_ERROR(
      check_destination_size(**destination, options.destination_path, image_size));
  CloneRecord record;
  record.image_size = image_size;
  record.region_size = options.region_size;
  // As recorded for later mounts; a URI without its secrets.
  record.source_path = is_source_uri(options.source_path) ? redact_uri(options.source_path)
                                                          : absolute_path(options.source_path);
  record.source_size = image_size;
  record.source_fingerprint = *fingerprint;
  record.destination_path = absolute_path(options.destination_path);
  Status written = MetadataStore::create(options.metadata_path, record, options.force);
  if (!written.is_ok() && !existed) remove_created();
  return written;
}

Clone::~Clone() = default;

Status Clone::check_image_storage(const std::string& image_path) const {
  const CloneRecord& r = record();
  std::vector<StorageRole> roles = {
      {"image", image_path}, {"destination", r.destination_path}, {"metadata", metadata_->path()}};
  if (!is_source_uri(r.source_path)) roles.push_back({"source", r.source_path});
  return require_distinct_storage(roles);
}

Result<std::unique_ptr<Clone>> Clone::open(const std::string& metadata_path,
                                           const OpenOptions& options) {
  std::unique_ptr<Clone> clone(new Clone());
  auto metadata = MetadataStore::open(metadata_path, options.metadata);
  if (!metadata) return metadata.status();
  clone->metadata_ = std::move(*metadata);
  const CloneRecord& record = clone->metadata_->record();
  // The recorded names may point elsewhere since create (a replaced symlink, a new loop device).
  CLONEFS_RETURN_IF_ERROR(
      check_distinct_files(record.source_path, record.destination_path, metadata_path));

  auto source_name = is_source_uri(record.source_path) ? source_uri_for_mount(record.source_path)
                                                       : Result<std::string>(record.source_path);
  if (!source_name) return source_name.status();
  auto source = open_any_source(*source_name, options.nbd);
  if (!source) return source.status();
  clone->source_ =
      options.wrappers.source ? options.wrappers.source(std::move(*source)) : std::move(*source);
  CLONEFS_RETURN_IF_ERROR(check_source_identity(*clone->source_, record));

  // Root writes the destination: not one another user owns or can swap.
  CLONEFS_RETURN_IF_ERROR(check_trusted_file(record.destination_path, "destination",
                                             TrustedKind::kDestination, current_trust_policy()));
  auto destination = open_destination(record.destination_path, std::nullopt);
  if (!destination) return destination.status();
  CLONEFS_RETURN_IF_ERROR(
      check_destination_size(**destination, record.destination_path, record.image_size));
  clone->destination_ = options.wrappers.destination
                            ? options.wrappers.destination(std::move(*destination))
                            : std::move(*destination);
  auto engine = CloneEngine::start(clone->metadata_->geometry(), *clone->source_,
                                   *clone->destination_, *clone->metadata_, options.engine);
  if (!engine) return engine.status();
  clone->engine_ = std::move(*engine);
  return clone;
}

}  // namespace clonefs
