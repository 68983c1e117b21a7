// Progress reports, cancellation and deadlines for long pipeline work. No LibTorch here.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "error.h"
#include "limn/limn.h"

namespace limn {

class Progress {
public:
    Progress(limn_progress_callback callback, void* user_data, uint32_t timeout_ms)
        : callback_(callback), user_data_(user_data), timeout_ms_(timeout_ms),
          start_(std::chrono::steady_clock::now()) {}

    // Reports `done` of `total` steps and throws Failure(LIMN_ERR_CANCELLED) if the callback asks
    // to stop, or Failure(LIMN_ERR_TIMEOUT) once the deadline has passed.
    void step(int32_t done, int32_t total, const char* what) const {
        if (timeout_ms_ > 0 && elapsed_seconds() * 1000.0 > timeout_ms_) {
            fail(LIMN_ERR_TIMEOUT, std::string(what) + ": the deadline of " + std::to_string(timeout_ms_) +
                                       " ms expired after " + std::to_string(done) + " of " +
                                       std::to_string(total) + " steps");
        }
        if (callback_ && callback_(done, total, user_data_) != 0) {
            fail(LIMN_ERR_CANCELLED, std::string(what) + ": cancelled by the progress callback after " +
                                         std::to_string(done) + " of " + std::to_string(total) + " steps");
        }
    }

    double elapsed_seconds() const {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }

private:
    limn_progress_callback callback_;
    void* user_data_;
    uint32_t timeout_ms_;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace limn
