#include "crash/recovery_check.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>

#include "engine/clone.h"

namespace clonefs::crash {
namespace {

Status write_whole_file(const std::string& path, const std::vector<std::byte>& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::from_errno(errno, "create " + path);
  ssize_t n = bytes.empty() ? 0 : ::write(fd, bytes.data(), bytes.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(bytes.size()))
    return Status::from_errno(n < 0 ? err : EIO, "write " + path);
  return Status::ok();
}

Status materialise(const CloneFiles& files, const CrashState& state) {
  for (size_t i = 0; i < kTracedFiles; ++i) {
    const std::string path = files.path(static_cast<TracedFile>(i));
    if (state.files[i].exists) {
      CLONEFS_RETURN_IF_ERROR(write_whole_file(path, state.files[i].bytes));
    } else {
      ::unlink(path.c_str());
    }
  }
  ::unlink((files.metadata + "-shm").c_str());
  return Status::ok();
}

std::string integrity_check(const std::string& path) {
  sqlite3* db = nullptr;
  std::string verdict;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    verdict = std::string("cannot open: ") + sqlite3_errmsg(db);
  } else {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      verdict = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    } else {
      verdict = sqlite3_errmsg(db);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close_v2(db);
  return verdict == "ok" ? "" : "rule 5 (metadata opens cleanly): integrity_check says: " + verdict;
}

std::string where(const Geometry& g, uint64_t sector) {
  uint64_t offset = sector * kSectorSize;
  return "region " + std::to_string(g.region_of(offset)) + ", sector at image offset " +
         std::to_string(offset);
}

// The first violation of each of rules 1-3 among the image's sectors.
std::vector<std::string> check_sectors(const Geometry& g, const RegionBitmap& committed,
                                       const std::vector<std::byte>& image, const Oracle& o) {
  const ImageModel& model = *o.model;
  std::string rule1, rule2, rule3;
  for (uint64_t s = 0; s < model.sector_count(); ++s) {
    auto content = model.sector_of(image, s);
    const bool valid = committed.test(g.region_of(s * kSectorSize));
    const bool is_source = std::ranges::equal(content, model.sector_of(model.source(), s));
    if (!valid && !is_source && rule2.empty()) {
      rule2 = "rule 2 (uncommitted region reads the source): " + where(g, s) + " reads " +
              model.classify(s, content, o.ops_begun);
    }
    if (valid && !is_source && !model.held_after(s, content, 1, o.ops_begun) && rule1.empty()) {
      rule1 = "rule 1 (committed region holds only source or user data): " + where(g, s) +
              " reads " + model.classify(s, content, o.ops_begun);
    }
    if (o.last_ack != nullptr && rule3.empty() &&
        !std::ranges::equal(content, model.sector_of(o.last_ack->image, s)) &&
        !model.held_after(s, content, o.last_ack->last_op + 1, o.ops_begun)) {
      rule3 = "rule 3 (acknowledged writes read back): " + where(g, s) +
              ", acknowledged by the flush of op " + std::to_string(o.last_ack->last_op) +
              ", reads " + model.classify(s, content, o.ops_begun) +
              (valid ? " (bit committed)" : " (bit not committed)");
    }
  }
  std::vector<std::string> broken;
  for (std::string* rule : {&rule1, &rule2, &rule3}) {
    if (!rule->empty()) broken.push_back(std::move(*rule));
  }
  return broken;
}

// Bits: none committed that the live run never set; none lost that a flush acknowledged.
std::vector<std::string> check_bits(const Geometry& g, const RegionBitmap& committed,
                                    const Oracle& o) {
  for (uint64_t r = 0; r < g.region_count(); ++r) {
    if (committed.test(r) && !o.ever_valid[r]) {
      return {"rule 1 (committed region holds only source or user data): region " +
              std::to_string(r) + " is committed valid but never became valid"};
    }
    if (o.last_ack != nullptr && o.last_ack->valid[r] && !committed.test(r)) {
      return {"rule 5 (hydration resumes where the last commit left it): region " +
              std::to_string(r) + " was valid when the flush of op " +
              std::to_string(o.last_ack->last_op) + " returned, but its bit is not committed"};
    }
  }
  return {};
}

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += (out.empty() ? "" : "\n") + line;
  return out;
}

}  // namespace

std::string CloneFiles::path(TracedFile file) const {
  switch (file) {
    case TracedFile::kDestination:
      return destination;
    case TracedFile::kDatabase:
      return metadata;
    case TracedFile::kWal:
      return metadata + "-wal";
  }
  return "";
}

std::string recover_and_check(const CloneFiles& files, const CrashState& state,
                              const Oracle& oracle) {
  Status written = materialise(files, state);
  if (!written.is_ok()) return "harness: " + written.message();
  std::vector<std::string> broken;
  {
    OpenOptions options;
    options.engine.commit_period = std::chrono::milliseconds(0);
    auto clone = Clone::open(files.metadata, options);
    if (!clone) return "rule 5 (metadata opens cleanly): " + clone.status().message();
    CloneEngine& engine = (*clone)->engine();
    std::vector<std::byte> image(engine.geometry().image_size());
    Status read = engine.read(0, image);
    if (!read.is_ok()) return "recovered image unreadable: " + read.message();
    broken = check_sectors(engine.geometry(), engine.bitmap(), image, oracle);
    auto bits = check_bits(engine.geometry(), engine.bitmap(), oracle);
    broken.insert(broken.end(), bits.begin(), bits.end());
  }  // dropped without close(): recovery itself commits nothing
  std::string integrity = integrity_check(files.metadata);
  if (!integrity.empty()) broken.push_back(integrity);
  return join(broken);
}

}  // namespace clonefs::crash
