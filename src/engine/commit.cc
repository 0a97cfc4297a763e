// The commit protocol, and the only place that syncs the destination or commits the metadata.
#include <algorithm>
#include <utility>

#include "engine/clone_engine.h"

namespace clonefs {

// (1) Freeze: take the transaction's exact regions and snapshot their bitmap chunks, atomically
//     starting a new transaction (a region made valid after this belongs to the next one).
// (2) fdatasync the destination: every frozen region's data was written before it was marked
//     valid, so after this it is durable.
// (3) Write exactly the frozen chunks to SQLite and commit.
// Committing before (2) is the dm-clone bug this project was founded on: after a power loss the
// metadata would claim regions whose data never reached the disk, and they would read garbage.
// The destination is synced once per commit; a user flush that commits needs no second sync,
// and a flush with nothing to commit still syncs (writes to valid regions need it).
Status CloneEngine::commit() {
  std::lock_guard serial(commit_mu_);
  std::vector<ChunkImage> frozen;
  {
    std::lock_guard lock(mu_);
    if (closed_) return Status::error(EIO, "clone is closed");
    if (mode_ == MetadataMode::kFail) return Status::error(EIO, "clone is in fail mode: " + mode_reason_);
    if (sync_failed_) {
      // A failed fdatasync may have dropped dirty pages; a later one can succeed without them.
      return Status::error(EIO, "destination flush failed earlier: " + mode_reason_);
    }
    std::vector<uint64_t> chunks = take_transaction_locked();
    std::sort(chunks.begin(), chunks.end());
    frozen.reserve(chunks.size());
    for (uint64_t chunk : chunks) frozen.push_back({chunk, bitmap_.chunk_image(chunk)});
  }

  Status synced = destination_.sync();
  counters_.destination_syncs.fetch_add(1, std::memory_order_relaxed);
  if (!synced.is_ok()) {
    fail_commit(synced, /*sync_failed=*/true);
    return synced;
  }
  if (frozen.empty()) return Status::ok();

  Status committed = store_.commit(frozen);
  counters_.metadata_commits.fetch_add(1, std::memory_order_relaxed);
  if (!committed.is_ok()) {
    fail_commit(committed, /*sync_failed=*/false);
    return committed;
  }
  return Status::ok();
}

// Rolls back to the last commit: the in-memory bitmap becomes the committed one, the open
// transaction is dropped, and no region can become valid until the clone is remounted.
void CloneEngine::fail_commit(const Status& cause, bool sync_failed) {
  RegionBitmap committed(geometry_.region_count());
  Status reloaded = store_.load(committed);
  std::lock_guard lock(mu_);
  take_transaction_locked();
  sync_failed_ = sync_failed_ || sync_failed;
  if (!reloaded.is_ok()) {
    mode_ = MetadataMode::kFail;
    mode_reason_ = "commit failed (" + cause.message() + ") and reloading the bitmap failed (" +
                   reloaded.message() + ")";
    return;
  }
  bitmap_.assign_from(committed);
  mode_ = MetadataMode::kReadOnly;
  mode_reason_ = "commit failed: " + cause.message();
}

std::vector<uint64_t> CloneEngine::take_transaction_locked() {
  for (uint64_t chunk : transaction_chunks_) chunk_in_transaction_[chunk] = false;
  transaction_regions_ = 0;
  return std::exchange(transaction_chunks_, {});
}

Status CloneEngine::flush() {
  note_user_io();
  return commit();
}

Status CloneEngine::close() {
  {
    std::lock_guard lock(committer_mu_);
    committer_stop_ = true;
  }
  committer_wake_.notify_all();
  if (committer_.joinable()) committer_.join();
  Status result = Status::ok();
  bool writable;
  {
    std::lock_guard lock(mu_);
    writable = mode_ == MetadataMode::kReadWrite && !closed_;
  }
  if (writable) result = commit();
  std::lock_guard lock(mu_);
  closed_ = true;
  return result;
}

void CloneEngine::committer_loop() {
  std::unique_lock wake(committer_mu_);
  while (!committer_stop_) {
    committer_wake_.wait_for(wake, options_.commit_period, [&] { return committer_stop_; });
    if (committer_stop_) break;
    bool pending;
    {
      std::lock_guard lock(mu_);
      pending = transaction_regions_ != 0 && mode_ == MetadataMode::kReadWrite;
    }
    if (!pending) continue;
    wake.unlock();
    (void)commit();  // a failure switches the mode; status and the next flush report it
    wake.lock();
  }
}

}  // namespace clonefs
