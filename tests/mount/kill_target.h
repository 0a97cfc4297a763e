// What the kill tests kill: the daemon of an unsupervised mount (--restart-limit 0), as before
// supervisors existed, or the supervisor of a supervised mount (fuse/supervisor.h), whose
// serving process then stops and the mount ends all the same. Killing only the serving process
// costs a pause instead (tests/mount/restart_test.cc).
#pragma once

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <thread>

#include "mount/mount_fixture.h"

namespace clonefs::testing {

enum class KillTarget { kUnsupervisedDaemon, kSupervisor };

inline std::string kill_target_name(const ::testing::TestParamInfo<KillTarget>& info) {
  return info.param == KillTarget::kSupervisor ? "Supervisor" : "UnsupervisedDaemon";
}

inline std::string mount_flags_for(KillTarget target) {
  return target == KillTarget::kUnsupervisedDaemon ? "--restart-limit 0" : "";
}

inline int pid_to_kill(const MountedImage& mounted, KillTarget target) {
  return target == KillTarget::kSupervisor ? mounted.supervisor_pid() : mounted.daemon_pid();
}

// A serving process whose supervisor died makes its final commit, then exits.
inline void wait_until_gone(int pid) {
  for (int i = 0; i < 1000 && pid > 0 && ::kill(pid, 0) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

}  // namespace clonefs::testing
