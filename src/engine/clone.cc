#include "engine/clone.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "io/fingerprint.h"
#include "io/posix_devices.h"

namespace clonefs {
namespace {

std::string absolute(const std::string& path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

}  // namespace

Status check_source_identity(SourceDevice& source, const CloneRecord& record) {
  if (source.size() != record.source_size) {
    return Status::error(EINVAL, "source " + source.name() + " is " + std::to_string(source.size()) +
                                     " bytes but the clone was created from " + std::to_string(record.source_size) +
                                     " bytes: it is not the same image");
  }
  auto fingerprint = source_fingerprint(source);
  if (!fingerprint) return fingerprint.status();
  if (*fingerprint != record.source_fingerprint) {
    return Status::error(EINVAL, "source " + source.name() + " has changed since the clone was created (fingerprint " +
                                     *fingerprint + ", recorded " + record.source_fingerprint + ")");
  }
  return Status::ok();
}

Status create_clone(const CreateOptions& options) {
  auto source = open_source(options.source_path);
  if (!source) return source.status();
  const uint64_t image_size = (*source)->size();
  auto geometry = Geometry::make(image_size, options.region_size);
  if (!geometry) return geometry.status();
  struct stat st {};
  if (!options.force && ::stat(options.metadata_path.c_str(), &st) == 0) {
    return Status::error(EEXIST, "metadata " + options.metadata_path + " already exists (pass --force to replace it)");
  }
  if (absolute(options.source_path) == absolute(options.destination_path)) {
    return Status::error(EINVAL, "destination " + options.destination_path + " is the source itself");
  }
  auto fingerprint = source_fingerprint(**source);
  if (!fingerprint) return fingerprint.status();

  bool existed = ::stat(options.destination_path.c_str(), &st) == 0;
  auto destination = open_destination(options.destination_path, image_size);
  if (!destination) return destination.status();
  if ((*destination)->size() < image_size) {
    return Status::error(EINVAL, "destination " + options.destination_path + " is " +
                                     std::to_string((*destination)->size()) + " bytes, smaller than the source (" +
                                     std::to_string(image_size) + " bytes)");
  }
  CloneRecord record;
  record.image_size = image_size;
  record.region_size = options.region_size;
  record.source_path = absolute(options.source_path);
  record.source_size = image_size;
  record.source_fingerprint = *fingerprint;
  record.destination_path = absolute(options.destination_path);
  Status written = MetadataStore::create(options.metadata_path, record, options.force);
  if (!written.is_ok() && !existed) ::unlink(options.destination_path.c_str());
  return written;
}

Clone::~Clone() = default;

Result<std::unique_ptr<Clone>> Clone::open(const std::string& metadata_path, const OpenOptions& options) {
  std::unique_ptr<Clone> clone(new Clone());
  auto metadata = MetadataStore::open(metadata_path, options.metadata);
  if (!metadata) return metadata.status();
  clone->metadata_ = std::move(*metadata);
  const CloneRecord& record = clone->metadata_->record();
  auto geometry = Geometry::make(record.image_size, record.region_size);
  if (!geometry) return geometry.status();

  auto source = open_source(record.source_path);
  if (!source) return source.status();
  clone->source_ = options.wrappers.source ? options.wrappers.source(std::move(*source)) : std::move(*source);
  CLONEFS_RETURN_IF_ERROR(check_source_identity(*clone->source_, record));

  auto destination = open_destination(record.destination_path, std::nullopt);
  if (!destination) return destination.status();
  if ((*destination)->size() < record.image_size) {
    return Status::error(EINVAL, "destination " + record.destination_path + " is " +
                                     std::to_string((*destination)->size()) + " bytes, smaller than the image (" +
                                     std::to_string(record.image_size) + " bytes)");
  }
  clone->destination_ = options.wrappers.destination ? options.wrappers.destination(std::move(*destination))
                                                     : std::move(*destination);
  auto engine = CloneEngine::start(*geometry, *clone->source_, *clone->destination_, *clone->metadata_,
                                   options.engine);
  if (!engine) return engine.status();
  clone->engine_ = std::move(*engine);
  return clone;
}

}  // namespace clonefs
