#include "jobs.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <new>

#include <pthread.h>

#include "error.h"

namespace limn::core {
namespace {

thread_local bool on_pool_worker = false;

}  // namespace

Job::Job(Work work, Done done, std::vector<std::shared_ptr<const void>> uses)
    : work_(std::move(work)), done_(std::move(done)), uses_(std::move(uses)) {}

void Job::cancel() noexcept {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (!finished_) cancel_requested_ = true;
}

bool Job::cancelled() const noexcept {
    const std::lock_guard<std::mutex> lock(mutex_);
    return cancel_requested_;
}

bool Job::finished() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return finished_;
}

bool Job::wait(int64_t timeout_ms) const {
    std::unique_lock<std::mutex> lock(mutex_);
    // A look: no wait at all. (A condition wait with a deadline already passed still sleeps in the
    // kernel for the timer slack, about 50 us, which an engine polling every frame would pay.)
    if (timeout_ms == 0 || finished_) return finished_;
    if (timeout_ms < 0) {
        ended_.wait(lock, [&] { return finished_; });
        return true;
    }
    return ended_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return finished_; });
}

limn_status Job::status() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return status_;
}

const std::string& Job::message() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return message_;
}

bool Job::uses(const void* object) const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return std::any_of(uses_.begin(), uses_.end(), [&](const auto& p) { return p.get() == object; });
}

void Job::run() noexcept {
    limn_status status = LIMN_OK;
    std::string message;
    if (cancelled()) {
        status = LIMN_ERR_CANCELLED;
        message = "cancelled before it started";
    } else {
        try {
            work_(*this);
        } catch (const Failure& f) {
            status = f.status();
            message = f.what();
        } catch (const std::bad_alloc&) {
            status = LIMN_ERR_OUT_OF_MEMORY;
            message = "out of host memory";
        } catch (const std::exception& e) {
            status = LIMN_ERR_INTERNAL;
            message = e.what();
        } catch (...) {
            status = LIMN_ERR_INTERNAL;
            message = "unknown exception";
        }
        // A stop asked for between steps shows as the pipeline's own CANCELLED; a cancel that came
        // too late to stop anything leaves the result, which is complete.
    }
    message = valid_utf8(message);
    if (done_) {
        try {
            done_(status, message.c_str());
        } catch (...) {  // a completion must not take the worker down; C callbacks cannot throw
        }
    }
    work_ = nullptr;  // what the work held (options, models) is released before waiters wake
    done_ = nullptr;
    std::vector<std::shared_ptr<const void>> uses;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        uses.swap(uses_);
        status_ = status;
        message_ = std::move(message);
        finished_ = true;
    }
    // Released outside the lock: the last reference to a model frees it, which on CUDA waits for
    // the calls queued on callers' streams; polls and the pool must not wait with it.
    uses.clear();
    ended_.notify_all();
}

JobPool& JobPool::instance() {
    static JobPool* pool = [] {
        auto* p = new JobPool();  // never destroyed: workers may run at exit
        ::pthread_atfork(&JobPool::before_fork, &JobPool::after_fork_in_parent, &JobPool::after_fork_in_child);
        return p;
    }();
    return *pool;
}

void JobPool::before_fork() { instance().mutex_.lock(); }

void JobPool::after_fork_in_parent() { instance().mutex_.unlock(); }

void JobPool::after_fork_in_child() {
    JobPool& pool = instance();
    // The thread objects name threads that do not exist here: kept, never joined or destroyed.
    new std::vector<std::thread>(std::move(pool.threads_));
    pool.threads_.clear();
    pool.queue_.clear();
    pool.running_.clear();
    pool.size_ = 0;
    pool.stopping_ = false;
    pool.mutex_.unlock();
}

void JobPool::start(int workers) {
    if (workers < 0 || workers > kMaxWorkers) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid worker count " + std::to_string(workers) + ": expected 0 (the default, " +
                                            std::to_string(kDefaultWorkers) + ") to " + std::to_string(kMaxWorkers));
    }
    const int n = workers == 0 ? kDefaultWorkers : workers;
    const std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) fail(LIMN_ERR_INVALID_ARGUMENT, "the job pool is shutting down");
    if (size_ == n) return;
    if (size_ != 0) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "the job pool runs already with " + std::to_string(size_) +
                                            " workers; limn_jobs_shutdown first to start it with " +
                                            std::to_string(n));
    }
    threads_.reserve(static_cast<size_t>(n));
    try {
        for (int i = 0; i < n; ++i) threads_.emplace_back([this] { worker_loop(); });
    } catch (const std::exception& e) {  // the system refused a thread: work with those that started
        size_ = static_cast<int>(threads_.size());
        if (size_ == 0) fail(LIMN_ERR_INTERNAL, std::string("cannot start the job pool's workers: ") + e.what());
        return;
    }
    size_ = n;
}

int JobPool::workers() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return size_;
}

void JobPool::submit(const std::shared_ptr<Job>& job) {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (stopping_) fail(LIMN_ERR_INVALID_ARGUMENT, "the job pool is shutting down; submit after it has");
    }
    if (workers() == 0) {
        try {
            start(0);
        } catch (const Failure&) {  // another thread started it meanwhile (with any size): use it
        }
    }
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (stopping_ || size_ == 0) fail(LIMN_ERR_INVALID_ARGUMENT, "the job pool is shutting down");
        queue_.push_back(job);
    }
    wake_.notify_one();
}

void JobPool::cancel_uses(const void* object) {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& job : queue_) {
        if (job->uses(object)) job->cancel();
    }
    for (const auto& job : running_) {
        if (job->uses(object)) job->cancel();
    }
}

void JobPool::shutdown() {
    if (on_worker()) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "limn_jobs_shutdown from a job or its callback would wait for itself; call it "
                                        "from a thread of your own");
    }
    std::vector<std::thread> threads;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (stopping_) fail(LIMN_ERR_INVALID_ARGUMENT, "the job pool is shutting down already (on another thread)");
        stopping_ = true;
        for (const auto& job : queue_) job->cancel();
        for (const auto& job : running_) job->cancel();
        threads.swap(threads_);
    }
    wake_.notify_all();
    for (std::thread& t : threads) t.join();  // the workers drain the queue, ending each job once
    const std::lock_guard<std::mutex> lock(mutex_);
    size_ = 0;
    stopping_ = false;
}

bool JobPool::on_worker() noexcept { return on_pool_worker; }

void JobPool::worker_loop() {
    on_pool_worker = true;
    for (;;) {
        std::shared_ptr<Job> job;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping, and nothing is left to end
            job = std::move(queue_.front());
            queue_.pop_front();
            running_.push_back(job);
        }
        job->run();
        const std::lock_guard<std::mutex> lock(mutex_);
        running_.erase(std::find(running_.begin(), running_.end(), job));
    }
}

}  // namespace limn::core
