// Metadata files as an attacker or a damaged disk would leave them: a valid file written by the
// real MetadataStore::create, then changed with plain SQL (what `sqlite3 FILE` lets anyone do).
// Shared by the hostile-metadata tests and the metadata loader's fuzz target.
#pragma once

#include <cstdint>
#include <string>

namespace clonefs::testing {

// The record valid_metadata() writes: 16 regions of 4 KiB and a short last one.
inline constexpr uint64_t kCraftedImageSize = 16 * 4096 + 1000;
inline constexpr uint64_t kCraftedRegionSize = 4096;

// Writes a valid metadata file at `path` (replacing one there): one committed chunk (regions 0..16,
// all valid) and saved hydration controls. False if it could not.
bool write_valid_metadata(const std::string& path);

// SQL that recreates the three tables without their constraints (NOT NULL, CHECK, PRIMARY KEY),
// rows kept, as a hostile file would have them: then any value can be put in any column.
extern const char* const kLoosenSchemaSql;

// Runs `sql` on the file at `path` with a plain connection (no clonefs checks); "" on success,
// else SQLite's message.
std::string run_sql(const std::string& path, const std::string& sql);

}  // namespace clonefs::testing
