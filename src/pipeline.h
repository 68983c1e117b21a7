// What the whole-photo pipelines share: their statistics, progress reports with cancellation and
// deadlines, and the checks of their arguments. No LibTorch here.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "error.h"
#include "limn/limn.h"

namespace limn::core {

struct PipelineStats {
    int32_t tile_size = 0;    // side of the tiles the network ran on
    int32_t tiles = 0;        // network runs in the successful pass
    int32_t oom_retries = 0;  // passes restarted with smaller tiles after running out of memory
    int32_t width = 0;        // size the network worked at (after max_side)
    int32_t height = 0;
    int32_t faces = 0;        // faces restored (face pipeline)
    int32_t faces_found = 0;  // faces given or detected
    int32_t faces_skipped = 0;  // under the minimum size or outside the photo
    double seconds = 0.0;
};

// Failure(LIMN_ERR_INVALID_ARGUMENT) unless 0 <= strength <= 1.
inline void check_strength(float strength) {
    if (!(strength >= 0.0f && strength <= 1.0f)) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "invalid strength " + number_text(strength) + ": expected 0..1");
    }
}

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

}  // namespace limn::core
