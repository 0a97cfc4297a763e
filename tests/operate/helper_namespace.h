// A private mount namespace in which mount(8) finds the build's mount.clonefs in /sbin, where
// util-linux looks for helpers: an overlay of the build's operate/ directory on /usr/sbin (or
// /sbin), seen only inside. The machine's own /sbin is left alone, and FUSE mounts made inside
// stay inside. Commands run in it through nsenter; at scope end every clonefs mount under the
// test's directory is unmounted (the daemons commit and exit, waited for), and the process
// holding the namespace is killed. (The namespace starts with a copy of the machine's mounts,
// other tests' clonefs mounts included: those are left alone.)
#pragma once

#include <sys/types.h>

#include <string>

#include "support/system.h"

namespace clonefs::testing {

class HelperNamespace {
 public:
  // `helper_dir`: a directory holding mount.clonefs; `scope`: the test's directory, under which
  // its mounts are; `extra_setup`: shell commands run inside before it is ready.
  HelperNamespace(const std::string& helper_dir, std::string scope,
                  const std::string& extra_setup = "");
  ~HelperNamespace();
  HelperNamespace(const HelperNamespace&) = delete;
  HelperNamespace& operator=(const HelperNamespace&) = delete;

  // "" once ready; else why the namespace could not be made.
  const std::string& problem() const { return problem_; }
  // `command` through sh inside the namespace.
  CommandResult run_inside(const std::string& command) const;
  // Unmounts every clonefs mount under `scope` with umount(8), and waits for their daemons.
  void unmount_all() const;

 private:
  const std::string scope_;
  pid_t holder_ = -1;
  std::string problem_;
};

// Waits up to 30 s until no process holds the metadata (the daemon's final commit is done and it
// exited); false if one still does.
bool wait_until_released(const std::string& metadata);

}  // namespace clonefs::testing
