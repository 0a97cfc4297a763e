#include "support/crafted_metadata.h"

#include <sqlite3.h>

#include <vector>

#include "meta/metadata_store.h"
#include "meta/region_bitmap.h"

namespace clonefs::testing {

const char* const kLoosenSchemaSql = R"sql(
ALTER TABLE clone RENAME TO strict_clone;
CREATE TABLE clone (id, image_size, region_size, source_path, source_size, source_fingerprint,
                    destination_path, created_at);
INSERT INTO clone SELECT * FROM strict_clone;
DROP TABLE strict_clone;
ALTER TABLE region_chunk RENAME TO strict_chunk;
CREATE TABLE region_chunk (chunk, bits);
INSERT INTO region_chunk SELECT * FROM strict_chunk;
DROP TABLE strict_chunk;
ALTER TABLE hydration_settings RENAME TO strict_settings;
CREATE TABLE hydration_settings (id, paused, threshold, batch, rate, saved_at);
INSERT INTO hydration_settings SELECT * FROM strict_settings;
DROP TABLE strict_settings;
)sql";

bool write_valid_metadata(const std::string& path) {
  CloneRecord record{.image_size = kCraftedImageSize,
                     .region_size = kCraftedRegionSize,
                     .source_path = "/srv/golden.img",
                     .source_size = kCraftedImageSize,
                     .source_fingerprint = "fnv1a64:0123456789abcdef",
                     .destination_path = "/srv/dest.img"};
  if (!MetadataStore::create(path, record, true).is_ok()) return false;
  // 17 regions: one chunk of 3 bytes, every bit of the 17 set.
  std::vector<std::byte> bits = {std::byte{0xff}, std::byte{0xff}, std::byte{0x01}};
  auto store = MetadataStore::open(path);
  if (!store) return false;
  std::vector<ChunkImage> chunks = {{0, bits}};
  return (*store)->commit(chunks).is_ok() &&
         (*store)->save_hydration_settings({.threshold = 8, .batch = 4}).is_ok();
}

std::string run_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string error;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    error = sqlite3_errmsg(db);
  } else {
    char* message = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
      error = message != nullptr ? message : "error";
      sqlite3_free(message);
    }
  }
  sqlite3_close_v2(db);
  return error;
}

}  // namespace clonefs::testing
