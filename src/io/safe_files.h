// Every file clonefs creates, rewrites, chmods or removes goes through here. clonefs runs as root
// in directories other users can write (a CI account's /var/lib/ci, node-exporter's textfile
// directory, a home): a name there may be a symlink, a hard link or a FIFO planted to make root
// write, chmod or delete a file of the planter's choosing. So, as systemd's chase() and OpenSSH's
// safe_path() do it: the directory is opened once (its last component not followed) and every
// later step is relative to that descriptor; a final component is never followed; a temporary
// gets an unpredictable name and O_EXCL before it is renamed over the target; a file is appended
// to only if it is a regular file with one link; and a file is removed only if the name still
// holds the very inode that was created. tests/operate/hostile_directory_test.cc plants each
// attack; tests/lint_file_access.sh keeps other code from opening paths for writing on its own.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <string_view>

#include "io/unique_fd.h"
#include "util/status.h"

namespace clonefs {

// A name in a directory held open. Moves only; the directory stays open as long as this does.
class DirectoryEntry {
 public:
  // Opens `path`'s parent (O_DIRECTORY; its last component not followed, so a parent swapped for
  // a symlink is refused) and keeps `path`'s last component as the name. Refuses a path that
  // names no file (empty, ending in '/', "." or "..").
  static Result<DirectoryEntry> open(const std::string& path);

  int directory() const { return directory_.get(); }
  const std::string& name() const { return name_; }
  const std::string& path() const { return path_; }  // for messages

  // The entry's own status, a symlink not followed (fstatat AT_SYMLINK_NOFOLLOW).
  Result<struct stat> status() const;
  // Creates the entry anew: O_CREAT|O_EXCL|O_NOFOLLOW, so nothing already there (a planted
  // symlink included) is opened. `mode` is applied with fchmod as well, past the umask.
  Result<UniqueFd> create(int flags, mode_t mode) const;
  // Opens what is there without following a symlink; `flags` gets O_NOFOLLOW|O_CLOEXEC.
  Result<UniqueFd> open_existing(int flags) const;
  // Removes the entry only if it still is the file (device, inode) given: the one created.
  Status remove_if_same(dev_t device, ino_t inode) const;

 private:
  DirectoryEntry(UniqueFd directory, std::string name, std::string path)
      : directory_(std::move(directory)), name_(std::move(name)), path_(std::move(path)) {}
  UniqueFd directory_;
  std::string name_;
  std::string path_;
};

struct ReplaceOptions {
  mode_t mode = 0644;
  bool durable = false;  // fsync the file before the rename and the directory after it
};

// Replaces the file at `path` with `text` atomically: a temporary with an unpredictable name is
// created beside it (O_EXCL|O_NOFOLLOW), written, given `options.mode`, and renamed over `path`
// through the directory's descriptor. A symlink, hard link or FIFO at `path` is replaced as a
// name; what it pointed at is untouched.
Status replace_file(const std::string& path, std::string_view text, const ReplaceOptions& options);

// Opens the log at `path` for appending (created `mode` if missing): never through a symlink,
// never a FIFO, device or directory (opened O_NONBLOCK, then checked), never a file with other
// links (a hard link to someone else's file). The descriptor is blocking and close-on-exec.
Result<UniqueFd> open_log_for_append(const std::string& path, mode_t mode);

// Creates an empty file beside `path` under a name no other user can predict (O_EXCL|O_NOFOLLOW,
// `mode`), for a program that then opens it by name (SQLite); returns its path.
Result<std::string> create_temporary_beside(const std::string& path, mode_t mode);

// Removes the name `path` (never what a symlink there points at), through its directory opened
// without following its last component. A missing name is not an error.
Status remove_name(const std::string& path);

// Renames `from` to `to`, both names in one directory, opened once: a temporary renamed over the
// file it replaces lands in the directory it was written in.
Status rename_in_directory(const std::string& from, const std::string& to);

// Refuses `path` if it exists and is not a regular file with exactly one link, or is a symlink:
// for files another program opens by name (SQLite's -wal and -shm), checked before it does.
Status check_plain_file_or_missing(const std::string& path);

}  // namespace clonefs
