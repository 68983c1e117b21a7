// Per-device memory: caps, cached-block release and statistics.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "device.h"

namespace c10 {
class DebugInfoGuard;
}

namespace limn::core {

struct MemoryStats {
    uint64_t allocated = 0, reserved = 0, peak_allocated = 0, peak_reserved = 0;
    uint64_t limit = 0, device_total = 0, device_free = 0;
    uint64_t allocations = 0;  // blocks of tensor memory taken from the system (see limn.h)
    uint64_t cached = 0;  // held unused for reuse: CUDA's reserved - allocated, the CPU arenas'
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

// While alive, LibTorch work of the calling thread on a CUDA `device` goes to a stream of its own
// (one per thread and device, from LibTorch's pool), so calls from several threads, on one model
// too, overlap instead of queuing on one stream. Nothing on the CPU.
class StreamScope {
public:
    explicit StreamScope(const Device& device);
    ~StreamScope();
    StreamScope(const StreamScope&) = delete;
    StreamScope& operator=(const StreamScope&) = delete;

private:
    std::shared_ptr<void> guard_;
};

// The images of the calling thread's current call (see ImagesScope): where they are, and the
// caller's CUDA stream the work is queued on (null: limn's own, StreamScope's).
struct CallImages {
    Device device;           // the CPU: host memory
    void* cuda_stream = nullptr;
    bool on_device() const { return device.is_cuda(); }
    // The call returns without waiting for the device: device images on the caller's stream.
    bool queued() const { return on_device() && cuda_stream; }
};
const CallImages& call_images();  // host memory and no stream outside every ImagesScope

// Failure(LIMN_ERR_INVALID_ARGUMENT) naming what is wrong unless `images` can be in `memory` for a
// model (named `model_name`) on `model_device`: device images must be in that device's memory
// (and every byte its rows span mapped: check_device_image), and a stream must be a created
// stream of that device's, not being captured.
void check_image_memory(const ImageMemory& memory, const Device& model_device, const std::string& model_name,
                        const NamedImages& images);

// While alive, the calling thread's pipeline call has its images in `memory`, checked first
// (check_image_memory). images_to_device and write_images then read and write the images where
// they are, StreamScope queues the work on the caller's stream, and Model::checked does not wait
// for the device when the call is queued(). A job's ready event is waited for on limn's stream,
// without the host; host images wait on the host for the caller's stream (or the ready event)
// before they are read.
class ImagesScope {
public:
    ImagesScope(const ImageMemory& memory, const Device& model_device, const std::string& model_name,
                const NamedImages& images);
    ~ImagesScope();
    ImagesScope(const ImagesScope&) = delete;
    ImagesScope& operator=(const ImagesScope&) = delete;

private:
    CallImages images_;
    const CallImages* outer_;
};

// A CUDA event recorded now on the caller's `stream` of `device` (a job's ImageMemory::ready):
// the job's work waits for what the caller queued there before the submit. check_image_memory
// has checked the stream.
std::shared_ptr<void> record_ready_event(const Device& device, void* stream);

// Keeps the CPU memory of a model's network runs between runs, as ONNX Runtime's arena does:
// blocks of 64 KiB and more that a run frees are kept, by size, and handed to the next run, which
// then neither faults nor zeroes fresh pages (measured in BENCHMARKS.md). One per model; the
// threads running it share it. A block in use counts as allocated in memory_stats() like any
// tensor; the unused ones as `cached`. It keeps at most $LIMN_CPU_ARENA_MAX bytes unused (default
// the smaller of 2 GiB and an eighth of the RAM; 0 turns the arena off), and within a CPU memory
// limit it gives its unused blocks back before a new one would cross the limit.
// release_cached_memory() of the CPU frees every arena's unused blocks.
class CpuArena;
std::shared_ptr<CpuArena> make_cpu_arena();  // nullptr when the arena is off

// While alive, CPU tensors the calling thread allocates come from `arena` (may be null: then from
// LibTorch's allocator as always). Allocations of other threads, and all outside such a scope,
// go to LibTorch's allocator untouched.
class CpuArenaScope {
public:
    explicit CpuArenaScope(const std::shared_ptr<CpuArena>& arena);
    ~CpuArenaScope();
    CpuArenaScope(const CpuArenaScope&) = delete;
    CpuArenaScope& operator=(const CpuArenaScope&) = delete;

private:
    CpuArena* outer_;
    std::shared_ptr<CpuArena> arena_;
};

// While alive on a thread, CPU tensors of every size come from the thread's arena (CpuArenaScope),
// not only the large ones, so that a fixed-size stream of calls takes nothing from the system once
// warm (limn_frames). Without an arena it does nothing.
class CpuArenaAllSizes {
public:
    CpuArenaAllSizes();
    ~CpuArenaAllSizes();
    CpuArenaAllSizes(const CpuArenaAllSizes&) = delete;
    CpuArenaAllSizes& operator=(const CpuArenaAllSizes&) = delete;

private:
    bool outer_;
};

// Bytes the CPU arenas hold unused, all models together.
uint64_t cpu_arena_cached_bytes();

// Waits for the work queued on `device` by the calling thread's current stream (CUDA); nothing on
// the CPU.
void synchronize(const Device& device);

// Waits until the calls queued so far on callers' streams of `device` (ImagesScope's queued calls)
// have run; nothing on the CPU, and no wait for other work on the device. A model's weights go back
// to the caching allocator only after that: those calls may still read them.
void wait_for_queued_calls(const Device& device);

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

// Bytes work on `device` may plan to use now, headroom taken off: on the CPU nine tenths of the
// limit set for it, else of the available RAM; on CUDA plannable_bytes() of its allocator.
uint64_t available_memory(const Device& device);

// What a CUDA plan may count on: free device memory (within `cap` bytes the allocator may reserve,
// when nonzero) plus half the allocator's unused cached blocks, less a fifth of headroom. The cap
// bounds reserved bytes, so it is planned against those, not against allocated ones.
uint64_t plannable_bytes(uint64_t cap, uint64_t device_free, uint64_t reserved, uint64_t allocated);

}  // namespace limn::core

namespace limn::core {
// Whether `e` reports memory exhaustion: c10::OutOfMemoryError, std::bad_alloc, a Failure with
// LIMN_ERR_OUT_OF_MEMORY, or an error whose text says so (LibTorch's CPU allocator, errors
// rethrown by the TorchScript interpreter). `detail` (may be NULL) receives the telling line.
bool is_out_of_memory(const std::exception& e, std::string* detail = nullptr) noexcept;

}  // namespace limn::core
