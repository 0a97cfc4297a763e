// The clone's metadata: one SQLite database in WAL mode holding the geometry, the source's
// identity, the destination path and the region bitmap. Schema: meta/SCHEMA.md.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "meta/geometry.h"
#include "meta/hydration_settings.h"
#include "meta/metadata_lock.h"
#include "meta/region_bitmap.h"

struct sqlite3;

namespace clonefs {

struct CloneRecord {
  uint64_t image_size = 0;
  uint64_t region_size = 0;
  std::string source_path;
  uint64_t source_size = 0;
  std::string source_fingerprint;
  std::string destination_path;
};

// A bitmap chunk as frozen for one commit.
struct ChunkImage {
  uint64_t index = 0;
  std::vector<std::byte> bytes;
};

// What the engine needs from the metadata: load the committed bitmap, and commit changed
// chunks durably. An interface so tests can fail or count commits.
class RegionStore {
 public:
  virtual ~RegionStore() = default;
  // Replaces `into` with the committed bitmap.
  virtual Status load(RegionBitmap& into) = 0;
  // Writes the chunks in one transaction; durable (survives power loss) when it returns OK.
  // On error nothing of it is committed.
  virtual Status commit(std::span<const ChunkImage> chunks) = 0;
  // One chunk as committed; empty if none was ever committed (all its regions invalid).
  virtual Result<std::vector<std::byte>> load_chunk(uint64_t chunk) = 0;
};

struct MetadataOpenOptions {
  // A reader (status): takes no lock and writes nothing. Otherwise the opener holds the clone
  // (MetadataLock) until the store is destroyed.
  bool read_only = false;
  // SQLite VFS to use (nullptr: the default). Crash tests register a recording VFS.
  const char* vfs = nullptr;
};

inline constexpr int kMetadataFormatVersion = 1;
// PRAGMA application_id: "CLFS".
inline constexpr int kMetadataApplicationId = 0x434c4653;

class MetadataStore final : public RegionStore, public HydrationSettingsStore {
 public:
  ~MetadataStore() override;
  MetadataStore(const MetadataStore&) = delete;
  MetadataStore& operator=(const MetadataStore&) = delete;

  // Writes a new metadata file at `path` (atomically: a temp file renamed into place, then the
  // directory synced). Refuses an existing file unless `force`, and even then while another
  // process holds it.
  static Status create(const std::string& path, const CloneRecord& record, bool force,
                       const MetadataOpenOptions& options = {});
  // Opens and checks: a SQLite database, of clonefs, of a format version this build reads,
  // passing quick_check, with its clone record. Writes nothing.
  static Result<std::unique_ptr<MetadataStore>> open(const std::string& path,
                                                     const MetadataOpenOptions& options = {});

  const CloneRecord& record() const { return record_; }
  // The record's geometry, checked when the store was opened.
  const Geometry& geometry() const { return *geometry_; }
  const std::string& path() const { return path_; }
  Status load(RegionBitmap& into) override;
  Status commit(std::span<const ChunkImage> chunks) override;
  Result<std::vector<std::byte>> load_chunk(uint64_t chunk) override;
  // In the hydration_settings table, created by the first save (SCHEMA.md).
  Result<std::optional<HydrationSettings>> load_hydration_settings() override;
  Status save_hydration_settings(const HydrationSettings& settings) override;

 private:
  MetadataStore(sqlite3* db, std::string path, std::optional<MetadataLock> lock)
      : db_(db), path_(std::move(path)), lock_(std::move(lock)) {}
  Status check_identity();
  Status read_record();
  Status exec(const char* sql);
  Status sqlite_error(const std::string& what);

  sqlite3* db_;
  // One transaction at a time on the connection: a save of the hydration controls (a control
  // request's thread) must not land inside a bitmap commit (the commit's thread), or fail on it.
  std::mutex mu_;
  std::string path_;
  std::optional<MetadataLock> lock_;  // keeps a second writer out; none for a reader
  CloneRecord record_;
  std::optional<Geometry> geometry_;  // set with record_ by open()
};

}  // namespace clonefs
