// Which files root may act on because of what they say: the metadata (it names the destination
// root writes to and the source root reads) and the destination it records. Like /etc/crypttab to
// systemd, such a file is trusted only if no other user can have written it or swapped it: as
// root, a file another user owns or can write, or one reached through a directory another user
// can write (without the sticky bit), is refused with one sentence naming the file, its owner and
// its mode. A user without root needs no such rule: the kernel already limits them to what they
// may open.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace clonefs {

// Who may own and write what root trusts.
struct TrustPolicy {
  uid_t caller = 0;  // the effective uid
  // False for a caller without root: every check passes (the kernel's permissions apply).
  bool enforced = false;
  // Root and the invoking user: the real uid, and SUDO_UID when sudo started us (that user could
  // run anything as root already, so their own files tell root nothing it would not do anyway).
  std::vector<uid_t> trusted_owners;
  bool trusts(uid_t owner) const;
};

// The policy of this process: enforced when the effective uid is 0.
TrustPolicy current_trust_policy();

// What is checked of the file itself beyond its owner and every directory on its way.
enum class TrustedKind {
  kMetadata,      // a regular file, writable by its owner only
  kCertificates,  // the same: the CAs an https source's server is checked against (another user
                  // able to write them could have clonefs read their golden for the real one)
  kDestination,   // a regular file writable by its owner only, or a block device (group "disk"
                  // may write one: that is how /dev is set up, and no user gains root from it)
};

// Resolves `path` a component at a time (symlinks included, as the kernel would, up to 40) and
// refuses it if any directory on the way, or the file, is not trusted by `policy`. `role` names
// the file in the message ("metadata", "destination"). A missing file is reported as such
// (ENOENT), its directories checked first.
Status check_trusted_file(const std::string& path, const std::string& role, TrustedKind kind,
                          const TrustPolicy& policy);

// The extended attribute `name` of `path`, read only if the caller may follow what that file says
// about other files: one the caller owns (for root: one a trusted owner owns). The owner is
// checked on the descriptor the attribute is read from, so a swapped name cannot slip in between.
// nullopt if it has none, cannot be read, or belongs to someone else.
std::optional<std::string> read_trusted_xattr(const std::string& path, const char* name,
                                              const TrustPolicy& policy);

}  // namespace clonefs
