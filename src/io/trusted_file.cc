#include "io/trusted_file.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <deque>

#include "io/paths.h"
#include "io/unique_fd.h"

namespace clonefs {
namespace {

// As many symlinks as the kernel follows in one path (MAXSYMLINKS).
constexpr int kMaxSymlinks = 40;

std::string owner_text(uid_t uid) {
  std::array<char, 1024> buf{};
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::string id = "uid " + std::to_string(uid);
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return id;
  return std::string(found->pw_name) + " (" + id + ")";
}

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// One sentence for every refusal: what was refused, why, and the owner and mode that made it so.
Status refuse(const std::string& role, const std::string& path, const std::string& what,
              const std::string& name, const struct stat& st, const std::string& why) {
  return Status::error(
      EPERM, role + " " + path + " is not trusted: " + what + " " + name + " " + why + " (owner " +
                 owner_text(st.st_uid) + ", mode " + mode_text(st.st_mode) +
                 "); as root clonefs only uses a " + role +
                 " that root or the invoking user owns and no other user can write or replace "
                 "(see TRUSTED FILES in clonefs(1))");
}

bool writable_by_others(const struct stat& st) { return (st.st_mode & (S_IWGRP | S_IWOTH)) != 0; }

// A directory another user can write lets that user swap what it holds: refused unless it is
// sticky (then only an entry's owner may rename or remove it, as in /tmp).
Status check_directory(const std::string& role, const std::string& path, const std::string& dir,
                       const struct stat& st, const TrustPolicy& policy) {
  if (!policy.trusts(st.st_uid))
    return refuse(role, path, "directory", dir, st, "belongs to another user");
  if (writable_by_others(st) && (st.st_mode & S_ISVTX) == 0)
    return refuse(role, path, "directory", dir, st, "can be written by other users");
  return Status::ok();
}

Status check_final(const std::string& role, const std::string& path, const std::string& name,
                   const struct stat& st, TrustedKind kind, const TrustPolicy& policy) {
  const bool device = kind == TrustedKind::kDestination && S_ISBLK(st.st_mode);
  if (!S_ISREG(st.st_mode) && !device) {
    return Status::error(EINVAL, role + " " + path + " is not a regular file" +
                                     (kind == TrustedKind::kDestination ? " or block device" : ""));
  }
  if (!policy.trusts(st.st_uid))
    return refuse(role, path, "file", name, st, "belongs to another user");
  // Another user able to write the metadata could point root at any file (or, the CAs, at any
  // server); a destination they can write only lets them change data they could change anyway.
  if (kind != TrustedKind::kDestination && writable_by_others(st))
    return refuse(role, path, "file", name, st, "can be written by other users");
  return Status::ok();
}

std::deque<std::string> components(const std::string& path) {
  std::deque<std::string> out;
  size_t at = 0;
  while (at <= path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string::npos) slash = path.size();
    std::string part = path.substr(at, slash - at);
    if (!part.empty() && part != ".") out.push_back(part);
    at = slash + 1;
  }
  return out;
}

std::string join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

std::string parent_of(const std::string& dir) {
  size_t slash = dir.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : dir.substr(0, slash);
}

}  // namespace

bool TrustPolicy::trusts(uid_t owner) const {
  return std::find(trusted_owners.begin(), trusted_owners.end(), owner) != trusted_owners.end();
}

TrustPolicy current_trust_policy() {
  TrustPolicy policy;
  policy.caller = ::geteuid();
  policy.enforced = policy.caller == 0;
  policy.trusted_owners = {0, ::getuid()};
  if (const char* sudo = std::getenv("SUDO_UID"); sudo != nullptr && *sudo != '\0') {
    char* end = nullptr;
    unsigned long uid = std::strtoul(sudo, &end, 10);
    if (*end == '\0' && uid < static_cast<unsigned long>(static_cast<uid_t>(-1)))
      policy.trusted_owners.push_back(static_cast<uid_t>(uid));
  }
  return policy;
}

// The walk resolves what the kernel would, but looks at every directory before it looks inside:
// once each directory on the way is one no other user can write, nobody else can change where
// the path leads between this check and the open that follows.
Status check_trusted_file(const std::string& path, const std::string& role, TrustedKind kind,
                          const TrustPolicy& policy) {
  if (!policy.enforced) return Status::ok();
  std::deque<std::string> todo = components(absolute_path(path));
  std::string dir = "/";
  struct stat st {};
  if (::lstat("/", &st) != 0) return Status::from_errno(errno, role + " " + path + ": /");
  CLONEFS_RETURN_IF_ERROR(check_directory(role, path, "/", st, policy));
  int links = 0;
  while (!todo.empty()) {
    std::string name = todo.front();
    todo.pop_front();
    if (name == "..") {  // `dir` is resolved, so its parent is the real one (already checked)
      dir = parent_of(dir);
      continue;
    }
    const std::string next = join(dir, name);
    if (::lstat(next.c_str(), &st) != 0) return Status::from_errno(errno, role + " " + path);
    if (S_ISLNK(st.st_mode)) {
      if (++links > kMaxSymlinks) return Status::from_errno(ELOOP, role + " " + path);
      if (!policy.trusts(st.st_uid))
        return refuse(role, path, "symlink", next, st, "belongs to another user");
      std::array<char, 4096> target{};
      ssize_t n = ::readlink(next.c_str(), target.data(), target.size() - 1);
      if (n < 0) return Status::from_errno(errno, role + " " + path + ": readlink " + next);
      std::string link(target.data(), static_cast<size_t>(n));
      std::deque<std::string> more = components(link);
      todo.insert(todo.begin(), more.begin(), more.end());
      if (link.starts_with("/")) dir = "/";
      continue;
    }
    if (todo.empty()) return check_final(role, path, next, st, kind, policy);
    if (!S_ISDIR(st.st_mode)) return Status::from_errno(ENOTDIR, role + " " + path);
    CLONEFS_RETURN_IF_ERROR(check_directory(role, path, next, st, policy));
    dir = next;
  }
  return Status::error(EISDIR, role + " " + path + " is a directory");
}

std::optional<std::string> read_trusted_xattr(const std::string& path, const char* name,
                                              const TrustPolicy& policy) {
  // O_NONBLOCK: a FIFO planted at the name must not hang the caller.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (fd.get() < 0) return std::nullopt;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return std::nullopt;
  bool owned = policy.enforced ? policy.trusts(st.st_uid) : st.st_uid == policy.caller;
  if (!owned) return std::nullopt;
  std::array<char, 4096> value{};
  ssize_t n = ::fgetxattr(fd.get(), name, value.data(), value.size());
  if (n <= 0) return std::nullopt;
  return std::string(value.data(), static_cast<size_t>(n));
}

}  // namespace clonefs
