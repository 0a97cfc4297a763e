// A clone as a whole: the source, destination and metadata it was created with, checked against
// each other, and the engine over them. create_clone() and Clone::open() are the two ways in.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "engine/clone_engine.h"
#include "io/devices.h"
#include "io/nbd_source.h"
#include "meta/metadata_store.h"

namespace clonefs {

struct CreateOptions {
  std::string source_path;  // a file or block device, or an NBD URI (io/source_uri.h)
  std::string destination_path;
  std::string metadata_path;
  uint64_t region_size = kDefaultRegionSize;
  bool force = false;
  bool share_source =
      false;  // an http(s) source: through the host's shared server (NbdSourceOptions)
};

// Checks the source, creates the destination sparse at the image size if it does not exist (or
// checks the existing one is large enough and writable), then writes the metadata. Refuses a
// destination or metadata path that is the source or each other under another name (symlink,
// hard link, bind mount, loop device), and, unless `force`, a destination already holding data
// or a signature. On any failure nothing is left behind: a destination it created is removed.
Status create_clone(const CreateOptions& options);

// Lets tests put wrappers (fault injection, recording) around the real devices.
struct DeviceWrappers {
  std::function<std::unique_ptr<SourceDevice>(std::unique_ptr<SourceDevice>)> source;
  std::function<std::unique_ptr<DestinationDevice>(std::unique_ptr<DestinationDevice>)> destination;
};

struct OpenOptions {
  EngineOptions engine;
  MetadataOpenOptions metadata;
  DeviceWrappers wrappers;
  NbdSourceOptions nbd;  // for a source recorded as a URI
};

class Clone {
 public:
  // Opens the metadata, then the source and destination it names, and refuses every mismatch
  // (files that are each other under another name, source size or fingerprint, destination too
  // small) before anything is written.
  static Result<std::unique_ptr<Clone>> open(const std::string& metadata_path,
                                             const OpenOptions& options);
  ~Clone();
  Clone(const Clone&) = delete;
  Clone& operator=(const Clone&) = delete;

  CloneEngine& engine() { return *engine_; }
  MetadataStore& metadata() { return *metadata_; }
  const CloneRecord& record() const { return metadata_->record(); }
  SourceDevice& source() { return *source_; }
  DestinationDevice& destination() { return *destination_; }

  // Refuses an IMAGE path that is the source, destination or metadata under another name: the
  // mount would hide that file behind the image, or cover the golden image's name with a
  // writable one. A missing IMAGE passes (mounting creates it).
  Status check_image_storage(const std::string& image_path) const;

 private:
  Clone() = default;
  std::unique_ptr<MetadataStore> metadata_;
  std::unique_ptr<SourceDevice> source_;
  std::unique_ptr<DestinationDevice> destination_;
  std::unique_ptr<CloneEngine> engine_;
};

// Checks that `source` is the one recorded (size and fingerprint), naming the mismatch.
Status check_source_identity(SourceDevice& source, const CloneRecord& record);

}  // namespace clonefs
