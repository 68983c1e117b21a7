// Asynchronous jobs: the library's worker pool, which runs submitted calls (limn_*_submit) off the
// caller's thread. No LibTorch here: a job's work is a function the C boundary builds.
//
// Every job ends exactly once, as finished (its work's status) or cancelled, and its completion
// runs once, on a pool worker, before wait() returns. Cancelling a job that has not started means
// it never runs; a running one is asked to stop (its work polls cancelled() between steps).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "limn/limn.h"

namespace limn::core {

class Job {
public:
    // The work throws Failure (or anything) on error; `done` gets the status and message.
    using Work = std::function<void(const Job&)>;
    using Done = std::function<void(limn_status status, const char* message)>;

    // `uses`: the objects (models) the work reads, so closing one cancels the job.
    Job(Work work, Done done, std::vector<std::shared_ptr<const void>> uses);

    void cancel() noexcept;
    bool cancelled() const noexcept;
    bool finished() const;
    // Waits until the job has ended and its completion has run, at most timeout_ms (< 0: no
    // limit). True once it has.
    bool wait(int64_t timeout_ms) const;
    // Once finished: the work's status (LIMN_ERR_CANCELLED if it never ran or stopped when asked)
    // and its message ("" on success).
    limn_status status() const;
    const std::string& message() const;  // fixed once finished
    bool uses(const void* object) const;

private:
    friend class JobPool;
    void run() noexcept;  // on a worker: the work unless cancelled, then the completion

    Work work_;
    Done done_;
    std::vector<std::shared_ptr<const void>> uses_;
    mutable std::mutex mutex_;
    mutable std::condition_variable ended_;
    bool cancel_requested_ = false;
    bool finished_ = false;
    limn_status status_ = LIMN_OK;
    std::string message_;
};

class JobPool {
public:
    static constexpr int kDefaultWorkers = 2;
    static constexpr int kMaxWorkers = 256;

    // The process's pool (created on first use; never destroyed, so no worker outlives it).
    static JobPool& instance();

    // Starts the pool with `workers` threads (0: kDefaultWorkers). Failure if it runs already with
    // another size (shut it down first).
    void start(int workers);
    int workers() const;
    // Queues a job, starting the pool if needed. Failure if called while shutting down.
    void submit(const std::shared_ptr<Job>& job);
    // Cancels every queued or running job that uses `object` (a model being closed).
    void cancel_uses(const void* object);
    // Cancels every queued job, lets the running ones stop, runs every completion, and joins the
    // workers. Failure from a pool worker (it would wait for itself).
    void shutdown();

    // True on a pool worker: inside a job's work or completion. Blocking calls refuse there.
    static bool on_worker() noexcept;

private:
    JobPool() = default;
    void worker_loop();
    // fork(): the pool is locked across it, and the child, which has none of the parent's threads,
    // starts with an empty pool (its parent's jobs are the parent's). pthread_atfork handlers.
    static void before_fork();
    static void after_fork_in_parent();
    static void after_fork_in_child();

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::shared_ptr<Job>> queue_;
    std::vector<std::shared_ptr<Job>> running_;
    std::vector<std::thread> threads_;
    int size_ = 0;
    bool stopping_ = false;
};

}  // namespace limn::core
