// The metadata loader against row-level damage: a valid metadata file (written by the real
// MetadataStore::create), its tables loosened so any value fits any column, then changed by the
// edits the input encodes, then opened as status opens it (reader: record, bitmap, saved
// controls) and as mount does (writer). Whatever the edits, the loader answers OK or a refusal;
// it never crashes, throws or allocates from an unchecked size.
//
// Input: a sequence of 4-byte edits [target, kind, a, b]; see apply_edit().
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "daemon/status_report.h"
#include "meta/metadata_store.h"
#include "support/crafted_metadata.h"

namespace {

using clonefs::testing::kLoosenSchemaSql;
using clonefs::testing::run_sql;  // for the pristine file only

struct Column {
  const char* table;
  const char* name;
};
constexpr Column kColumns[] = {
    {"clone", "image_size"},          {"clone", "region_size"},
    {"clone", "source_path"},         {"clone", "source_size"},
    {"clone", "source_fingerprint"},  {"clone", "destination_path"},
    {"region_chunk", "chunk"},        {"region_chunk", "bits"},
    {"hydration_settings", "paused"}, {"hydration_settings", "threshold"},
    {"hydration_settings", "batch"},  {"hydration_settings", "rate"},
};
constexpr size_t kColumnCount = sizeof kColumns / sizeof kColumns[0];

// A value of the kind `kind` selects, sized by a and b: NULL, negative, huge, small, the wrong
// type (text holding a number, a real, a blob), or an oversized text or blob.
std::string value_sql(uint8_t kind, uint8_t a, uint8_t b) {
  const int64_t wide = (int64_t{a} << 8) | b;
  switch (kind % 12) {
    case 0:
      return "NULL";
    case 1:
      return std::to_string(-wide - 1);
    case 2:
      return a % 64 == 63 ? "9223372036854775807" : std::to_string(int64_t{1} << (a % 63));
    case 3:
      return std::to_string(wide);
    case 4:
      return "'" + std::to_string(wide) + "'";
    case 5:
      return std::to_string(wide) + ".5";
    case 6:
      return "zeroblob(" + std::to_string(wide % 2048) + ")";
    case 7:
      return "randomblob(" + std::to_string(a % 8) + ")";
    case 8:
      return "printf('%.*c', " + std::to_string(wide % 6000) + ", 'a')";
    case 9:
      return "'/x' || char(0) || 'y'";
    case 10:
      return "x'" + std::string(2 * (a % 4 + 1), "0f"[b % 2]) + "'";
    default:
      return "-9223372036854775808";
  }
}

std::string apply_edit(const uint8_t* e) {
  const uint8_t target = e[0], kind = e[1], a = e[2], b = e[3];
  if (target < 200) {
    const Column& c = kColumns[target % kColumnCount];
    return std::string("UPDATE ") + c.table + " SET " + c.name + " = " + value_sql(kind, a, b);
  }
  switch (target % 6) {
    case 0:  // an extra or replaced bitmap row
      return "INSERT INTO region_chunk VALUES (" + value_sql(kind, a, b) + ", " +
             value_sql(static_cast<uint8_t>(a + b), b, a) + ")";
    case 1:
      return "DELETE FROM region_chunk";
    case 2:
      return "DELETE FROM clone";
    case 3:  // a second clone record
      return "INSERT INTO clone SELECT * FROM clone";
    case 4:
      return "DELETE FROM hydration_settings";
    default:  // the bitmap row of chunk 0 at the right length with bits set past the end
      return "UPDATE region_chunk SET bits = x'ffff" + std::string(b % 2 ? "ff" : "01") + "'";
  }
}

// The temporary directory, removed when libFuzzer exits (leaked, so it outlives every static).
const std::string* g_temporary = nullptr;
void remove_at_exit(const std::string& dir) {
  g_temporary = new std::string(dir);
  std::atexit([] { std::filesystem::remove_all(*g_temporary); });
}

struct Files {
  std::string dir, pristine, work;
};

const Files& files() {
  static const Files f = [] {
    std::string base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string pattern = base + "/clonefs-fuzz-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    Files out{pattern, pattern + "/pristine.clonefs", pattern + "/work.clonefs"};
    if (!clonefs::testing::write_valid_metadata(out.pristine) ||
        !run_sql(out.pristine, kLoosenSchemaSql).empty() ||
        !run_sql(out.pristine, "PRAGMA journal_mode=DELETE").empty())
      std::abort();
    remove_at_exit(out.dir);
    return out;
  }();
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Files& f = files();
  std::filesystem::copy_file(f.pristine, f.work, std::filesystem::copy_options::overwrite_existing);
  // One connection for all the edits, each statement on its own: one that SQLite refuses (a
  // wrong type where the loosened schema still has an affinity) leaves the others applied.
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(f.work.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    for (size_t at = 0; at + 4 <= size && at < 4 * 16; at += 4)
      (void)sqlite3_exec(db, apply_edit(data + at).c_str(), nullptr, nullptr, nullptr);
  }
  sqlite3_close_v2(db);
  auto status = clonefs::offline_status(f.work);
  if (status.is_ok() && status->regions_valid > status->regions_total) std::abort();
  if (!status.is_ok()) return 0;  // the writer's open refuses what the reader's did
  auto store = clonefs::MetadataStore::open(f.work);
  if (store.is_ok()) {
    const clonefs::Geometry& g = (*store)->geometry();
    if (g.region_count() == 0 || g.region_count() > clonefs::kMaxRegionCount) std::abort();
    clonefs::RegionBitmap bitmap(g.region_count());
    (void)(*store)->load(bitmap);
    (void)(*store)->load_hydration_settings();
  }
  return 0;
}
