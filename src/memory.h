// Per-device memory: caps, cached-block release and statistics.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include "device.h"

namespace c10 {
class DebugInfoGuard;
}

namespace limn {

struct MemoryStats {
    uint64_t allocated = 0, reserved = 0, peak_allocated = 0, peak_reserved = 0;
    uint64_t limit = 0, device_total = 0, device_free = 0;
};

// While one is alive on a thread, the CPU tensors LibTorch allocates and frees there (and in the
// intra-op threads it starts from there) are counted: memory_stats() of the CPU reports their
// live and peak bytes. Every C API call holds one (c_api.cpp).
class CpuTensorScope {
public:
    CpuTensorScope();
    ~CpuTensorScope();
    CpuTensorScope(const CpuTensorScope&) = delete;
    CpuTensorScope& operator=(const CpuTensorScope&) = delete;

private:
    std::unique_ptr<c10::DebugInfoGuard> guard_;
};

// 0 removes the cap. On CUDA it becomes the caching allocator's memory fraction.
void set_memory_limit(const Device& device, uint64_t bytes);
uint64_t memory_limit(const Device& device);
void release_cached_memory(const Device& device);
MemoryStats memory_stats(const Device& device);
void reset_peak_memory(const Device& device);

// Peak bytes of tensors LibTorch allocates on the calling thread while `body` runs, on any
// device, counted from zero at the start (CPU tensors also count for memory_stats()). Measures
// what one network run costs, without being confused by other threads' or other models' memory.
uint64_t peak_allocated_during(const std::function<void()>& body);

// Bytes work on `device` may plan to use now: the limit set for it, if any (less what is already
// allocated on CUDA); otherwise free device memory plus unused cached blocks (CUDA) or the
// available RAM (CPU).
uint64_t available_memory(const Device& device);

}  // namespace limn

namespace limn {
// Whether `e` reports memory exhaustion: c10::OutOfMemoryError, std::bad_alloc, a Failure with
// LIMN_ERR_OUT_OF_MEMORY, or an error whose text says so (LibTorch's CPU allocator, errors
// rethrown by the TorchScript interpreter). `detail` (may be NULL) receives the telling line.
bool is_out_of_memory(const std::exception& e, std::string* detail = nullptr) noexcept;

// Called after an out-of-memory error: returns every device's cached blocks to the driver so the
// next, smaller call can succeed. Never throws.
void recover_from_out_of_memory() noexcept;
}  // namespace limn
