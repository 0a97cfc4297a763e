#include "meta/metadata_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

#include "io/posix_devices.h"
#include "io/safe_files.h"
#include "io/trusted_file.h"
#include "meta/database_files.h"

namespace clonefs {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE clone (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  image_size INTEGER NOT NULL,
  region_size INTEGER NOT NULL,
  source_path TEXT NOT NULL,
  source_size INTEGER NOT NULL,
  source_fingerprint TEXT NOT NULL,
  destination_path TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE region_chunk (
  chunk INTEGER PRIMARY KEY,
  bits BLOB NOT NULL
);
)sql";

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  bool prepared() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

int errno_for(int sqlite_code) {
  switch (sqlite_code & 0xff) {
    case SQLITE_FULL:
      return ENOSPC;
    case SQLITE_READONLY:
      return EROFS;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return EBUSY;
    case SQLITE_CANTOPEN:
      return ENOENT;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return EINVAL;
    default:
      return EIO;
  }
}

const char* type_name(int type) {
  switch (type) {
    case SQLITE_INTEGER:
      return "an integer";
    case SQLITE_FLOAT:
      return "a real number";
    case SQLITE_TEXT:
      return "text";
    case SQLITE_BLOB:
      return "a blob";
    default:
      return "NULL";
  }
}

// Every column read from the file is checked before use: a crafted file (or a damaged one that
// still passes quick_check) must be refused in one sentence, never reach a std::string with a
// NULL pointer or a size that wraps. Each names the column and what it holds.
Status column_of_type(sqlite3_stmt* q, int col, const std::string& name, int type) {
  int actual = sqlite3_column_type(q, col);
  if (actual == type) return Status::ok();
  return Status::error(EINVAL, name + " is " + type_name(actual) + ", not " + type_name(type));
}

// A size or count: an integer, not negative.
Status column_size(sqlite3_stmt* q, int col, const std::string& name, uint64_t& out) {
  CLONEFS_RETURN_IF_ERROR(column_of_type(q, col, name, SQLITE_INTEGER));
  sqlite3_int64 value = sqlite3_column_int64(q, col);
  if (value < 0)
    return Status::error(EINVAL, name + " is negative (" + std::to_string(value) + ")");
  out = static_cast<uint64_t>(value);
  return Status::ok();
}

// A path or fingerprint: text, not empty, at most PATH_MAX bytes, without a NUL (which would
// make the name opened differ from the name shown).
Status column_text(sqlite3_stmt* q, int col, const std::string& name, std::string& out) {
  constexpr int kMaxText = 4096;
  CLONEFS_RETURN_IF_ERROR(column_of_type(q, col, name, SQLITE_TEXT));
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(q, col));
  int bytes = sqlite3_column_bytes(q, col);
  if (text == nullptr || bytes == 0) return Status::error(EINVAL, name + " is empty");
  if (bytes > kMaxText)
    return Status::error(EINVAL, name + " is " + std::to_string(bytes) + " bytes long");
  out.assign(text, static_cast<size_t>(bytes));
  if (out.find('\0') != std::string::npos) return Status::error(EINVAL, name + " holds a NUL byte");
  return Status::ok();
}

}  // namespace

MetadataStore::~MetadataStore() {
  sqlite3_close_v2(db_);  // before the lock is released (lock_ is destroyed after this body)
}

Status MetadataStore::sqlite_error(const std::string& what) {
  int code = sqlite3_extended_errcode(db_);
  return Status::error(errno_for(code),
                       "metadata " + path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

Status MetadataStore::exec(const char* sql) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return sqlite_error(sql);
  return Status::ok();
}

Status MetadataStore::create(const std::string& path, const CloneRecord& record, bool force,
                             const MetadataOpenOptions& options) {
  struct stat st {};
  std::optional<MetadataLock> replaced;  // held until the new file has taken its place
  if (::stat(path.c_str(), &st) == 0) {
    if (!force)
      return Status::error(EEXIST,
                           "metadata " + path + " already exists (pass --force to replace it)");
    // Replacing another user's file (or one in their directory) is acting on their say-so.
    CLONEFS_RETURN_IF_ERROR(
        check_trusted_file(path, "metadata", TrustedKind::kMetadata, current_trust_policy()));
    auto lock = MetadataLock::acquire(path);
    if (!lock) return lock.status().with_context("cannot replace it");
    replaced.emplace(std::move(*lock));
  }
  // A fixed name (META.new) could be planted by another user who can write the directory, and
  // SQLite would write the new database through it: the temporary's name is unpredictable, and
  // the file exists (created exclusively, never through a link) before SQLite opens it.
  auto made = create_temporary_beside(path, 0644);
  if (!made) return made.status().with_context("metadata " + path);
  const std::string temp = *made;

  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(temp.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, options.vfs);
  std::unique_ptr<MetadataStore> store(new MetadataStore(db, temp, std::nullopt));
  if (rc != SQLITE_OK) return store->sqlite_error("create");
  Status written = [&]() -> Status {
    CLONEFS_RETURN_IF_ERROR(store->exec("PRAGMA journal_mode=WAL"));
    CLONEFS_RETURN_IF_ERROR(store->exec("PRAGMA synchronous=FULL"));
    CLONEFS_RETURN_IF_ERROR(store->exec("BEGIN"));
    CLONEFS_RETURN_IF_ERROR(store->exec(kSchema));
    Statement insert(db, "INSERT INTO clone VALUES (1, ?, ?, ?, ?, ?, ?, ?)");
    if (!insert.prepared()) return store->sqlite_error("prepare clone record");
    sqlite3_bind_int64(insert.get(), 1, static_cast<sqlite3_int64>(record.image_size));
    sqlite3_bind_int64(insert.get(), 2, static_cast<sqlite3_int64>(record.region_size));
    sqlite3_bind_text(insert.get(), 3, record.source_path.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(insert.get(), 4, static_cast<sqlite3_int64>(record.source_size));
    sqlite3_bind_text(insert.get(), 5, record.source_fingerprint.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(insert.get(), 6, record.destination_path.c_str(), -1, SQLITE_TRANSIENT);
    std::string now = utc_now();
    sqlite3_bind_text(insert.get(), 7, now.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(insert.get()) != SQLITE_DONE) return store->sqlite_error("write clone record");
    CLONEFS_RETURN_IF_ERROR(
        store->exec(("PRAGMA application_id=" + std::to_string(kMetadataApplicationId)).c_str()));
    CLONEFS_RETURN_IF_ERROR(
        store->exec(("PRAGMA user_version=" + std::to_string(kMetadataFormatVersion)).c_str()));
    return store->exec("COMMIT");
  }();
  store.reset();  // closing checkpoints the WAL into the file and removes it
  if (!written.is_ok()) {
    static_cast<void>(remove_database_files(temp));  // the failure to report is `written`
    return written;
  }
  static_cast<void>(remove_wal_files(path));  // the replaced database's, not to be applied to ours
  if (Status renamed = rename_in_directory(temp, path); !renamed) {
    static_cast<void>(remove_name(temp));
    return renamed;
  }
  return sync_parent_directory(path);
}

Result<std::unique_ptr<MetadataStore>> MetadataStore::open(const std::string& path,
                                                           const MetadataOpenOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::from_errno(errno, "metadata " + path);
  if (!S_ISREG(st.st_mode))
    return Status::error(EINVAL, "metadata " + path + " is not a regular file");
  if (st.st_size == 0)
    return Status::error(EINVAL, "metadata " + path + " is empty, not clonefs metadata");
  // It names the files root reads and writes: as root, only one no other user controls.
  CLONEFS_RETURN_IF_ERROR(
      check_trusted_file(path, "metadata", TrustedKind::kMetadata, current_trust_policy()));

  // One writer per metadata file: a second daemon would commit a bitmap the first does not know.
  std::optional<MetadataLock> lock;
  if (!options.read_only) {
    auto held = MetadataLock::acquire(path);
    if (!held) return held.status();
    lock.emplace(std::move(*held));
  }
  CLONEFS_RETURN_IF_ERROR(check_wal_files(path));
  sqlite3* db = nullptr;
  // A reader of an unmounted clone opens read-write (and writes nothing) so that closing removes
  // the -wal and -shm files a read-only WAL connection would leave behind; next to a running
  // mount it stays read-only. Either way SQLite's own locks keep it consistent with a writer.
  bool held_elsewhere = options.read_only && metadata_holder_pid(path) > 0;
  int flags = held_elsewhere ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, options.vfs);
  if (rc != SQLITE_OK && options.read_only && !held_elsewhere) {
    sqlite3_close_v2(db);  // e.g. a reader without write permission: read-only is enough
    db = nullptr;
    rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, options.vfs);
  }
  std::unique_ptr<MetadataStore> store(new MetadataStore(db, path, std::move(lock)));
  if (rc != SQLITE_OK) return store->sqlite_error("open");
  sqlite3_busy_timeout(db, 5000);
  CLONEFS_RETURN_IF_ERROR(store->check_identity());
  if (!options.read_only) CLONEFS_RETURN_IF_ERROR(store->exec("PRAGMA synchronous=FULL"));
  CLONEFS_RETURN_IF_ERROR(store->read_record());
  return store;
}

Status MetadataStore::check_identity() {
  auto pragma_int = [&](const char* sql, int64_t& out) -> Status {
    Statement q(db_, sql);
    if (!q.prepared() || sqlite3_step(q.get()) != SQLITE_ROW) {
      int code = sqlite3_extended_errcode(db_) & 0xff;
      if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) {
        return Status::error(
            EINVAL, "metadata " + path_ +
                        " is not a clonefs metadata file (not a SQLite database, or corrupt)");
      }
      return sqlite_error(sql);
    }
    out = sqlite3_column_int64(q.get(), 0);
    return Status::ok();
  };
  int64_t app_id = 0, version = 0;
  CLONEFS_RETURN_IF_ERROR(pragma_int("PRAGMA application_id", app_id));
  if (app_id != kMetadataApplicationId) {
    return Status::error(EINVAL, "metadata " + path_ +
                                     " is a SQLite database of another program (application_id " +
                                     std::to_string(app_id) + "), not clonefs metadata");
  }
  CLONEFS_RETURN_IF_ERROR(pragma_int("PRAGMA user_version", version));
  if (version > kMetadataFormatVersion) {
    return Status::error(EINVAL, "metadata " + path_ + " has format version " +
                                     std::to_string(version) + "; this clonefs reads version " +
                                     std::to_string(kMetadataFormatVersion) + " (upgrade clonefs)");
  }
  if (version < 1)
    return Status::error(EINVAL,
                         "metadata " + path_ + " has no format version: not clonefs metadata");
  Statement check(db_, "PRAGMA quick_check");
  if (!check.prepared() || sqlite3_step(check.get()) != SQLITE_ROW)
    return sqlite_error("quick_check");
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(check.get(), 0));
  std::string verdict = text != nullptr ? text : "no verdict";
  if (verdict != "ok")
    return Status::error(EINVAL, "metadata " + path_ + " is corrupt: " + verdict);
  return Status::ok();
}

Status MetadataStore::read_record() {
  Statement q(db_,
              "SELECT image_size, region_size, source_path, source_size, source_fingerprint, "
              "destination_path FROM clone WHERE id = 1");
  if (!q.prepared())
    return Status::error(EINVAL, "metadata " + path_ + " is corrupt: no clone table");
  if (sqlite3_step(q.get()) != SQLITE_ROW)
    return Status::error(EINVAL, "metadata " + path_ + " is corrupt: no clone record");
  Status read = [&]() -> Status {
    CLONEFS_RETURN_IF_ERROR(column_size(q.get(), 0, "clone.image_size", record_.image_size));
    CLONEFS_RETURN_IF_ERROR(column_size(q.get(), 1, "clone.region_size", record_.region_size));
    CLONEFS_RETURN_IF_ERROR(column_text(q.get(), 2, "clone.source_path", record_.source_path));
    CLONEFS_RETURN_IF_ERROR(column_size(q.get(), 3, "clone.source_size", record_.source_size));
    CLONEFS_RETURN_IF_ERROR(
        column_text(q.get(), 4, "clone.source_fingerprint", record_.source_fingerprint));
    CLONEFS_RETURN_IF_ERROR(
        column_text(q.get(), 5, "clone.destination_path", record_.destination_path));
    // The image is the source: create records both from the one size.
    if (record_.image_size != record_.source_size) {
      return Status::error(EINVAL, "clone.image_size " + std::to_string(record_.image_size) +
                                       " is not clone.source_size " +
                                       std::to_string(record_.source_size));
    }
    auto geometry = Geometry::make(record_.image_size, record_.region_size);
    if (!geometry) return geometry.status();
    geometry_ = *geometry;
    return Status::ok();
  }();
  if (!read) return read.with_context("metadata " + path_ + " is corrupt");
  return Status::ok();
}

Status MetadataStore::load(RegionBitmap& into) {
  std::lock_guard lock(mu_);
  into.clear();
  Statement q(db_, "SELECT chunk, bits FROM region_chunk");
  if (!q.prepared()) return sqlite_error("read region bitmap");
  int rc;
  while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
    uint64_t chunk = 0;
    Status row = column_size(q.get(), 0, "region_chunk.chunk", chunk);
    if (row) row = column_of_type(q.get(), 1, "region_chunk.bits", SQLITE_BLOB);
    if (!row) return row.with_context("metadata " + path_ + " is corrupt");
    auto* data = static_cast<const std::byte*>(sqlite3_column_blob(q.get(), 1));
    auto size = static_cast<size_t>(sqlite3_column_bytes(q.get(), 1));
    // load_chunk refuses a chunk past the last region and one of the wrong size.
    CLONEFS_RETURN_IF_ERROR(into.load_chunk(chunk, std::span(data, size))
                                .with_context("metadata " + path_ + " is corrupt"));
  }
  if (rc != SQLITE_DONE) return sqlite_error("read region bitmap");
  return Status::ok();
}

Status MetadataStore::commit(std::span<const ChunkImage> chunks) {
  if (chunks.empty()) return Status::ok();
  std::lock_guard lock(mu_);
  CLONEFS_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE"));
  Status written = [&]() -> Status {
    Statement upsert(db_, "INSERT OR REPLACE INTO region_chunk (chunk, bits) VALUES (?, ?)");
    if (!upsert.prepared()) return sqlite_error("prepare bitmap write");
    for (const ChunkImage& chunk : chunks) {
      sqlite3_bind_int64(upsert.get(), 1, static_cast<sqlite3_int64>(chunk.index));
      sqlite3_bind_blob(upsert.get(), 2, chunk.bytes.data(), static_cast<int>(chunk.bytes.size()),
                        SQLITE_STATIC);
      if (sqlite3_step(upsert.get()) != SQLITE_DONE) return sqlite_error("write region bitmap");
      sqlite3_reset(upsert.get());
    }
    return exec("COMMIT");
  }();
  if (!written.is_ok()) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  return written;
}

Result<std::vector<std::byte>> MetadataStore::load_chunk(uint64_t chunk) {
  std::lock_guard lock(mu_);
  Statement q(db_, "SELECT bits FROM region_chunk WHERE chunk = ?");
  if (!q.prepared()) return sqlite_error("read region chunk " + std::to_string(chunk));
  sqlite3_bind_int64(q.get(), 1, static_cast<sqlite3_int64>(chunk));
  int rc = sqlite3_step(q.get());
  if (rc == SQLITE_DONE) return std::vector<std::byte>();
  if (rc != SQLITE_ROW) return sqlite_error("read region chunk " + std::to_string(chunk));
  if (Status blob = column_of_type(q.get(), 0, "region_chunk.bits", SQLITE_BLOB); !blob)
    return blob.with_context("metadata " + path_ + " is corrupt");
  auto* data = static_cast<const std::byte*>(sqlite3_column_blob(q.get(), 0));
  auto size = static_cast<size_t>(sqlite3_column_bytes(q.get(), 0));
  return std::vector<std::byte>(data, data + size);
}

// Created by the first save, not at create: a clone made by an older clonefs has no such table
// and opens as it always did (the defaults apply), and needs no format version bump.
Result<std::optional<HydrationSettings>> MetadataStore::load_hydration_settings() {
  std::lock_guard lock(mu_);
  Statement exists(
      db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'hydration_settings'");
  if (!exists.prepared()) return sqlite_error("read hydration controls");
  int rc = sqlite3_step(exists.get());
  if (rc == SQLITE_DONE) return std::optional<HydrationSettings>();
  if (rc != SQLITE_ROW) return sqlite_error("read hydration controls");
  Statement q(db_, "SELECT paused, threshold, batch, rate FROM hydration_settings WHERE id = 1");
  if (!q.prepared()) return sqlite_error("read hydration controls");
  rc = sqlite3_step(q.get());
  if (rc == SQLITE_DONE) return std::optional<HydrationSettings>();
  if (rc != SQLITE_ROW) return sqlite_error("read hydration controls");
  HydrationSettings settings;
  uint64_t paused = 0;
  Status read = [&]() -> Status {
    CLONEFS_RETURN_IF_ERROR(column_size(q.get(), 0, "hydration_settings.paused", paused));
    CLONEFS_RETURN_IF_ERROR(
        column_size(q.get(), 1, "hydration_settings.threshold", settings.threshold));
    CLONEFS_RETURN_IF_ERROR(column_size(q.get(), 2, "hydration_settings.batch", settings.batch));
    CLONEFS_RETURN_IF_ERROR(column_size(q.get(), 3, "hydration_settings.rate", settings.rate));
    // The ranges `clonefs hydrate` accepts (control/control_protocol.cc).
    if (paused > 1) return Status::error(EINVAL, "hydration_settings.paused is not 0 or 1");
    if (settings.threshold < 1 || settings.threshold > kMaxHydrationThreshold)
      return Status::error(EINVAL, "hydration_settings.threshold is out of range");
    if (settings.batch < 1 || settings.batch > kMaxHydrationBatch)
      return Status::error(EINVAL, "hydration_settings.batch is out of range");
    return Status::ok();
  }();
  if (!read) return read.with_context("metadata " + path_ + " is corrupt");
  settings.paused = paused == 1;
  return std::optional<HydrationSettings>(settings);
}

Status MetadataStore::save_hydration_settings(const HydrationSettings& settings) {
  std::lock_guard lock(mu_);
  CLONEFS_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE"));
  Status written = [&]() -> Status {
    CLONEFS_RETURN_IF_ERROR(
        exec("CREATE TABLE IF NOT EXISTS hydration_settings ("
             "id INTEGER PRIMARY KEY CHECK (id = 1), paused INTEGER NOT NULL, threshold INTEGER "
             "NOT NULL, "
             "batch INTEGER NOT NULL, rate INTEGER NOT NULL, saved_at TEXT NOT NULL)"));
    Statement upsert(db_, "INSERT OR REPLACE INTO hydration_settings VALUES (1, ?, ?, ?, ?, ?)");
    if (!upsert.prepared()) return sqlite_error("prepare hydration controls write");
    sqlite3_bind_int64(upsert.get(), 1, settings.paused ? 1 : 0);
    sqlite3_bind_int64(upsert.get(), 2, static_cast<sqlite3_int64>(settings.threshold));
    sqlite3_bind_int64(upsert.get(), 3, static_cast<sqlite3_int64>(settings.batch));
    sqlite3_bind_int64(upsert.get(), 4, static_cast<sqlite3_int64>(settings.rate));
    std::string now = utc_now();
    sqlite3_bind_text(upsert.get(), 5, now.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(upsert.get()) != SQLITE_DONE) return sqlite_error("write hydration controls");
    return exec("COMMIT");
  }();
  if (!written.is_ok()) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  return written;
}

}  // namespace clonefs
