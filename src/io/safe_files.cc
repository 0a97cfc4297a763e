#include "io/safe_files.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace clonefs {
namespace {

std::string describe_type(mode_t mode) {
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Why `st` may not be written as a file of clonefs's own, or "" if it may.
std::string unsafe_reason(const struct stat& st) {
  if (!S_ISREG(st.st_mode)) return "is " + describe_type(st.st_mode);
  if (st.st_nlink != 1) {
    return "has " + std::to_string(st.st_nlink) +
           " links (a hard link to another file is never written)";
  }
  return "";
}

// A name no other user can guess and plant first: 16 hex digits from getrandom.
Result<std::string> unpredictable_suffix() {
  unsigned char bytes[8];
  if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes))
    return Status::from_errno(errno, "getrandom for a temporary file name");
  std::string hex;
  for (unsigned char b : bytes) {
    char two[3];
    std::snprintf(two, sizeof two, "%02x", b);
    hex += two;
  }
  return hex;
}

Status write_all(int fd, std::string_view text, const std::string& path) {
  for (size_t done = 0; done < text.size();) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::from_errno(errno, "write " + path);
    done += static_cast<size_t>(n);
  }
  return Status::ok();
}

}  // namespace

Result<DirectoryEntry> DirectoryEntry::open(const std::string& path) {
  const size_t slash = path.rfind('/');
  std::string parent = slash == std::string::npos ? "." : path.substr(0, slash);
  if (parent.empty()) parent = "/";
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (name.empty() || name == "." || name == "..")
    return Status::error(EINVAL, path + " does not name a file");
  // O_NOFOLLOW on the last component: a directory swapped for a symlink is refused (ELOOP or
  // ENOTDIR), not entered.
  int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP || errno == ENOTDIR) {
      return Status::error(errno, "directory " + parent + " of " + path +
                                      " is a symbolic link or not a directory: refused");
    }
    return Status::from_errno(errno, "directory " + parent + " of " + path);
  }
  return DirectoryEntry(UniqueFd(fd), std::move(name), path);
}

Result<struct stat> DirectoryEntry::status() const {
  struct stat st {};
  if (::fstatat(directory(), name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return Status::from_errno(errno, path_);
  return st;
}

Result<UniqueFd> DirectoryEntry::create(int flags, mode_t mode) const {
  UniqueFd fd(::openat(directory(), name_.c_str(),
                       flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (fd.get() < 0) return Status::from_errno(errno, "create " + path_);
  if (::fchmod(fd.get(), mode) != 0) {
    Status st = Status::from_errno(errno, "chmod " + path_);
    ::unlinkat(directory(), name_.c_str(), 0);  // created just now, and held: our own file
    return st;
  }
  return fd;
}

Result<UniqueFd> DirectoryEntry::open_existing(int flags) const {
  UniqueFd fd(::openat(directory(), name_.c_str(), flags | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ELOOP) return Status::error(ELOOP, path_ + " is a symbolic link: refused");
    return Status::from_errno(errno, path_);
  }
  return fd;
}

Status DirectoryEntry::remove_if_same(dev_t device, ino_t inode) const {
  auto st = status();
  if (!st) return st.status();
  if (st->st_dev != device || st->st_ino != inode) {
    return Status::error(ESTALE, path_ + " is no longer the file this process created: left alone");
  }
  if (::unlinkat(directory(), name_.c_str(), 0) != 0)
    return Status::from_errno(errno, "remove " + path_);
  return Status::ok();
}

Status replace_file(const std::string& path, std::string_view text, const ReplaceOptions& options) {
  auto target = DirectoryEntry::open(path);
  if (!target) return target.status();
  auto suffix = unpredictable_suffix();
  if (!suffix) return suffix.status();
  // Hidden, so a collector reading *.prom never takes it for the file.
  const std::string temp_name = "." + target->name() + ".tmp." + *suffix;
  const std::string temp_path = path.substr(0, path.size() - target->name().size()) + temp_name;
  UniqueFd fd(::openat(target->directory(), temp_name.c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, options.mode));
  if (fd.get() < 0) return Status::from_errno(errno, "create " + temp_path);
  Status written = [&]() -> Status {
    CLONEFS_RETURN_IF_ERROR(write_all(fd.get(), text, temp_path));
    // The umask may have narrowed the mode; the reader (a collector) may be another user.
    if (::fchmod(fd.get(), options.mode) != 0)
      return Status::from_errno(errno, "chmod " + temp_path);
    if (options.durable && ::fsync(fd.get()) != 0)
      return Status::from_errno(errno, "fsync " + temp_path);
    if (::close(fd.release()) != 0) return Status::from_errno(errno, "close " + temp_path);
    if (::renameat(target->directory(), temp_name.c_str(), target->directory(),
                   target->name().c_str()) != 0) {
      return Status::from_errno(errno, "rename " + temp_path + " to " + path);
    }
    return Status::ok();
  }();
  if (!written) {
    ::unlinkat(target->directory(), temp_name.c_str(), 0);
    return written;
  }
  if (options.durable && ::fsync(target->directory()) != 0)
    return Status::from_errno(errno, "fsync the directory of " + path);
  return Status::ok();
}

Result<UniqueFd> open_log_for_append(const std::string& path, mode_t mode) {
  auto entry = DirectoryEntry::open(path);
  if (!entry) return entry.status().with_context("log file");
  // O_NONBLOCK: opening a FIFO for writing would otherwise wait for a reader forever.
  UniqueFd fd(::openat(
      entry->directory(), entry->name().c_str(),
      O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, mode));
  if (fd.get() < 0) {
    if (errno == ELOOP)
      return Status::error(ELOOP, "log file " + path + " is a symbolic link: refused");
    if (errno == ENXIO) return Status::error(ENXIO, "log file " + path + " is a FIFO: refused");
    return Status::from_errno(errno, "log file " + path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::from_errno(errno, "log file " + path);
  if (std::string why = unsafe_reason(st); !why.empty())
    return Status::error(EPERM, "log file " + path + " " + why + ": refused");
  if (::fcntl(fd.get(), F_SETFL, O_APPEND) != 0)
    return Status::from_errno(errno, "log file " + path);
  return fd;
}

Result<std::string> create_temporary_beside(const std::string& path, mode_t mode) {
  auto suffix = unpredictable_suffix();
  if (!suffix) return suffix.status();
  const std::string temp = path + ".new-" + *suffix;
  auto entry = DirectoryEntry::open(temp);
  if (!entry) return entry.status();
  auto fd = entry->create(O_WRONLY, mode);
  if (!fd) return fd.status();
  return temp;
}

Status remove_name(const std::string& path) {
  auto entry = DirectoryEntry::open(path);
  if (!entry) return entry.status().code() == ENOENT ? Status::ok() : entry.status();
  if (::unlinkat(entry->directory(), entry->name().c_str(), 0) != 0 && errno != ENOENT)
    return Status::from_errno(errno, "remove " + path);
  return Status::ok();
}

Status rename_in_directory(const std::string& from, const std::string& to) {
  auto target = DirectoryEntry::open(to);
  if (!target) return target.status();
  const std::string dir = to.substr(0, to.size() - target->name().size());
  if (from.size() <= dir.size() || from.compare(0, dir.size(), dir) != 0 ||
      from.find('/', dir.size()) != std::string::npos) {
    return Status::error(EINVAL, "rename " + from + " to " + to + ": not in one directory");
  }
  const std::string from_name = from.substr(dir.size());
  if (::renameat(target->directory(), from_name.c_str(), target->directory(),
                 target->name().c_str()) != 0) {
    return Status::from_errno(errno, "rename " + from + " to " + to);
  }
  return Status::ok();
}

Status check_plain_file_or_missing(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::ok();
    return Status::from_errno(errno, path);
  }
  if (std::string why = unsafe_reason(st); !why.empty())
    return Status::error(EPERM, path + " " + why + ": refused");
  return Status::ok();
}

}  // namespace clonefs
