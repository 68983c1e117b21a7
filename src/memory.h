// Per-device memory: caps, cached-block release and statistics.
#pragma once

#include <cstdint>

#include "device.h"

namespace limn {

struct MemoryStats {
    uint64_t allocated = 0, reserved = 0, peak_allocated = 0, peak_reserved = 0;
    uint64_t limit = 0, device_total = 0, device_free = 0;
};

// 0 removes the cap. On CUDA it becomes the caching allocator's memory fraction.
void set_memory_limit(const Device& device, uint64_t bytes);
uint64_t memory_limit(const Device& device);
void release_cached_memory(const Device& device);
MemoryStats memory_stats(const Device& device);
void reset_peak_memory(const Device& device);

}  // namespace limn

namespace limn {
// Called after an out-of-memory error: returns every device's cached blocks to the driver so the
// next, smaller call can succeed. Never throws.
void recover_from_out_of_memory() noexcept;
}  // namespace limn
