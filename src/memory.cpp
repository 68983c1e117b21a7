#include "memory.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "error.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/Exception.h>
#include <c10/util/ThreadLocalDebugInfo.h>

#if LIMN_WITH_CUDA
#include <ATen/Context.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace limn::core {
namespace {

std::mutex limits_mutex;
std::map<std::string, uint64_t> limits;  // device id -> cap in bytes

// Live and peak bytes of the CPU tensors counted by CpuTensorScope, and how many of those tensors
// took their memory from the system (not from an arena's unused blocks).
std::atomic<int64_t> cpu_live{0};
std::atomic<int64_t> cpu_peak{0};
std::atomic<uint64_t> cpu_allocations{0};
// Set while an arena reports a block it hands out again, which is no new allocation.
thread_local bool reusing_block = false;

void count_cpu(int64_t delta) {
    const int64_t now = cpu_live.fetch_add(delta) + delta;
    int64_t peak = cpu_peak.load();
    while (now > peak && !cpu_peak.compare_exchange_weak(peak, now)) {
    }
}

// One of LibTorch's reports of a CPU tensor allocated (> 0 bytes) or freed (< 0).
void count_cpu_report(int64_t alloc_size) {
    count_cpu(alloc_size);
    if (alloc_size > 0 && !reusing_block) cpu_allocations.fetch_add(1, std::memory_order_relaxed);
}

// Receives LibTorch's per-allocation reports (the hook its memory profiler uses).
class CpuTensorCounter final : public c10::MemoryReportingInfoBase {
public:
    void reportMemoryUsage(void*, int64_t alloc_size, size_t, size_t, c10::Device device) override {
        if (device.is_cpu()) count_cpu_report(alloc_size);
    }
    bool memoryProfilingEnabled() const override { return true; }
};

// Resident set now and its peak (VmHWM), from /proc/self/status.
void process_rss(uint64_t& current, uint64_t& peak) {
    std::ifstream in("/proc/self/status");
    std::string key;
    uint64_t kib = 0;
    std::string unit;
    current = peak = 0;
    while (in >> key) {
        if (key == "VmRSS:" && in >> kib >> unit) {
            current = kib * 1024;
        } else if (key == "VmHWM:" && in >> kib >> unit) {
            peak = kib * 1024;
        } else {
            std::string rest;
            std::getline(in, rest);
        }
    }
}

#if LIMN_WITH_CUDA
void init_cuda_allocator() {
    // The caching allocator is created lazily with the CUDA context; make sure it exists before
    // asking it for a fraction or statistics.
    at::globalContext().lazyInitDevice(at::kCUDA);
}
#endif

// Large CPU tensors on transparent huge pages: LibTorch allocates fresh memory for every
// activation, so a big run otherwise spends a fifth of its time in page faults (measured on
// DCT-Net at 1024 px, BENCHMARKS.md). LibTorch reads THP_MEM_ALLOC_ENABLE once, at its first
// allocation, so this runs when liblimn is loaded; a value the environment already has wins, and
// LIMN_CPU_HUGE_PAGES=0 leaves it alone.
__attribute__((constructor)) void prefer_huge_pages() {
    const char* choice = std::getenv("LIMN_CPU_HUGE_PAGES");
    if (choice && std::string(choice) == "0") return;
    ::setenv("THP_MEM_ALLOC_ENABLE", "1", /*overwrite=*/0);
}

}  // namespace

// ---- The CPU arena --------------------------------------------------------------------------

void free_cpu_block(void* data);  // the deleter of the arenas' blocks (and of raw allocations)

class CpuArena : public std::enable_shared_from_this<CpuArena> {
public:
    explicit CpuArena(uint64_t cap) : cap_(cap) {}
    ~CpuArena() { release(); }

    // A block of at least `n` bytes (n >= kMinBlock), reported to LibTorch's memory profiler
    // hooks as an allocation of n bytes, as its own allocator does.
    c10::DataPtr take(size_t n);
    uint64_t cached() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return cached_;
    }
    void release() {
        std::lock_guard<std::mutex> lock(mutex_);
        release_locked();
    }

    static constexpr size_t kMinBlock = 64 * 1024;

private:
    struct Block {
        std::shared_ptr<CpuArena> arena;
        void* data;
        size_t size;       // bytes of the block
        size_t requested;  // bytes of the tensor
    };
    friend void free_cpu_block(void* data);
    static void give_back(Block* b);
    void put(Block* b);
    void release_locked() {
        for (const auto& [size, data] : free_) c10::free_cpu(data);
        free_.clear();
        cached_ = 0;
    }

    const uint64_t cap_;
    mutable std::mutex mutex_;
    std::multimap<size_t, void*> free_;  // unused blocks by size
    uint64_t cached_ = 0;                // their bytes
    uint64_t in_use_ = 0;                // bytes of blocks handed out
};

namespace {

thread_local CpuArena* current_arena = nullptr;
thread_local bool arena_all_sizes = false;  // CpuArenaAllSizes

// The arenas' blocks in use, by address. Their DataPtrs are plain (the context is the address),
// as LibTorch's raw_allocate (oneDNN's scratch and weights) requires, so the deleter finds the
// block here; any other address came from the allocator underneath.
// Never destroyed: a tensor may be freed by another library's static destructor at exit.
std::mutex& blocks_mutex = *new std::mutex;
std::unordered_map<void*, void*>& blocks_in_use = *new std::unordered_map<void*, void*>;  // -> Block*
c10::DeleterFnPtr next_raw_deleter = nullptr;

std::mutex& arenas_mutex = *new std::mutex;
// Every arena alive, for release and statistics (never destroyed either).
std::vector<std::weak_ptr<CpuArena>>& arenas = *new std::vector<std::weak_ptr<CpuArena>>;

// LibTorch's CPU allocator with one question first: is this thread inside a CpuArenaScope? Then
// large blocks come from that arena; everything else goes to the allocator that was there.
class ArenaAllocator final : public c10::Allocator {
public:
    explicit ArenaAllocator(c10::Allocator* next) : next_(next) {}
    c10::DataPtr allocate(size_t n) override {
        CpuArena* arena = current_arena;
        if (!arena || n == 0 || (n < CpuArena::kMinBlock && !arena_all_sizes)) return next_->allocate(n);
        return arena->take(n);
    }
    c10::DeleterFnPtr raw_deleter() const override { return next_raw_deleter ? &free_cpu_block : nullptr; }
    void copy_data(void* dest, const void* src, std::size_t count) const override {
        default_copy_data(dest, src, count);
    }

private:
    c10::Allocator* next_;
};

void install_arena_allocator() {
    static std::once_flag once;
    std::call_once(once, [] {
        c10::Allocator* next = c10::GetCPUAllocator();
        next_raw_deleter = next->raw_deleter();
        static ArenaAllocator allocator(next);
        c10::SetCPUAllocator(&allocator, /*priority=*/100);
    });
}

uint64_t arena_cap() {
    if (const char* text = std::getenv("LIMN_CPU_ARENA_MAX"); text && *text) {
        char* end = nullptr;
        const unsigned long long v = std::strtoull(text, &end, 10);
        if (end && *end == '\0') return v;
    }
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long page = sysconf(_SC_PAGESIZE);
    const uint64_t ram = pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
    return std::min<uint64_t>(uint64_t(2) << 30, ram / 8);
}

}  // namespace

c10::DataPtr CpuArena::take(size_t n) {
    // Pages for large blocks; small ones (CpuArenaAllSizes) in 64-byte steps.
    const size_t size = n >= 4096 ? (n + 4095) / 4096 * 4096 : (n + 63) / 64 * 64;
    bool reused = false;
    void* data = nullptr;
    size_t got = size;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        // The smallest unused block that fits, if it wastes at most a quarter.
        auto it = free_.lower_bound(size);
        if (it != free_.end() && it->first <= size + size / 4) {
            got = it->first;
            data = it->second;
            reused = true;
            free_.erase(it);
            cached_ -= got;
        } else {
            // Within a CPU memory limit, unused blocks go before a new one crosses it.
            const uint64_t limit = memory_limit(Device{});
            if (limit > 0 && in_use_ + cached_ + size > limit) release_locked();
        }
        in_use_ += got;
    }
    if (!data) {
        try {
            data = c10::alloc_cpu(size);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            in_use_ -= got;
            throw;
        }
    }
    try {
        std::unique_ptr<Block> block(new Block{shared_from_this(), data, got, n});
        std::lock_guard<std::mutex> lock(blocks_mutex);
        blocks_in_use[data] = block.get();
        block.release();  // owned by blocks_in_use until free_cpu_block
    } catch (...) {  // out of host memory for the bookkeeping: the block goes back
        c10::free_cpu(data);
        std::lock_guard<std::mutex> lock(mutex_);
        in_use_ -= got;
        throw;
    }
    reusing_block = reused;
    c10::reportMemoryUsageToProfiler(data, static_cast<int64_t>(n), 0, 0, c10::Device(c10::DeviceType::CPU));
    reusing_block = false;
    return {data, data, &free_cpu_block, c10::Device(c10::DeviceType::CPU)};
}

void free_cpu_block(void* data) {
    void* block = nullptr;
    {
        std::lock_guard<std::mutex> lock(blocks_mutex);
        const auto it = blocks_in_use.find(data);
        if (it != blocks_in_use.end()) {
            block = it->second;
            blocks_in_use.erase(it);
        }
    }
    if (block) {
        CpuArena::give_back(static_cast<CpuArena::Block*>(block));
    } else if (next_raw_deleter) {
        next_raw_deleter(data);  // a raw allocation the arena did not make
    }
}

void CpuArena::give_back(Block* b) {
    c10::reportMemoryUsageToProfiler(b->data, -static_cast<int64_t>(b->requested), 0, 0,
                                     c10::Device(c10::DeviceType::CPU));
    std::shared_ptr<CpuArena> arena = std::move(b->arena);
    arena->put(b);
    delete b;
    // `arena` may go here, with the last block of a model that is gone: its destructor frees.
}

void CpuArena::put(Block* b) {
    std::lock_guard<std::mutex> lock(mutex_);
    in_use_ -= b->size;
    const uint64_t limit = memory_limit(Device{});
    const uint64_t cap = limit > 0 ? std::min(cap_, limit / 2) : cap_;
    if (cached_ + b->size > cap) {
        c10::free_cpu(b->data);
        return;
    }
    free_.emplace(b->size, b->data);
    cached_ += b->size;
}

std::shared_ptr<CpuArena> make_cpu_arena() {
    const uint64_t cap = arena_cap();
    if (cap == 0) return nullptr;
    install_arena_allocator();
    auto arena = std::make_shared<CpuArena>(cap);
    std::lock_guard<std::mutex> lock(arenas_mutex);
    arenas.erase(std::remove_if(arenas.begin(), arenas.end(), [](const auto& w) { return w.expired(); }),
                 arenas.end());
    arenas.push_back(arena);
    return arena;
}

CpuArenaScope::CpuArenaScope(const std::shared_ptr<CpuArena>& arena) : outer_(current_arena), arena_(arena) {
    current_arena = arena_.get();
}

CpuArenaScope::~CpuArenaScope() { current_arena = outer_; }

CpuArenaAllSizes::CpuArenaAllSizes() : outer_(arena_all_sizes) { arena_all_sizes = true; }

CpuArenaAllSizes::~CpuArenaAllSizes() { arena_all_sizes = outer_; }

namespace {

// Every arena alive (a strong reference each, for the length of a call).
std::vector<std::shared_ptr<CpuArena>> live_arenas() {
    std::vector<std::shared_ptr<CpuArena>> out;
    std::lock_guard<std::mutex> lock(arenas_mutex);
    for (const auto& w : arenas) {
        if (auto a = w.lock()) out.push_back(std::move(a));
    }
    return out;
}

}  // namespace

uint64_t cpu_arena_cached_bytes() {
    uint64_t total = 0;
    for (const auto& a : live_arenas()) total += a->cached();
    return total;
}

namespace {

thread_local const CallImages* current_images = nullptr;

#if LIMN_WITH_CUDA
// limn's stream of the calling thread on `device`: one per thread and device, taken from the pool
// on the thread's first call (a new one every call would scatter the caching allocator's blocks,
// cached per stream, over many).
c10::cuda::CUDAStream thread_stream(const Device& device) {
    thread_local std::map<int, c10::cuda::CUDAStream> streams;
    auto it = streams.find(device.index);
    if (it == streams.end()) {
        it = streams.emplace(device.index, c10::cuda::getStreamFromPool(
                                               false, static_cast<c10::DeviceIndex>(device.index))).first;
    }
    return it->second;
}

// An event recorded now on `stream` (of the current device), destroyed with its last owner; null
// with `err` set where it could not be made or recorded (no error left behind for LibTorch).
std::shared_ptr<void> recorded_event(cudaStream_t stream, cudaError_t& err) {
    cudaEvent_t event = nullptr;
    err = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
    if (err == cudaSuccess) {
        err = cudaEventRecord(event, stream);
        if (err != cudaSuccess) (void)cudaEventDestroy(event);
    }
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return nullptr;
    }
    return std::shared_ptr<void>(event, [](void* e) { (void)cudaEventDestroy(static_cast<cudaEvent_t>(e)); });
}

// Failure(LIMN_ERR_INVALID_ARGUMENT) unless `stream` is a CUDA stream of `device` that limn can
// queue work on: a created stream, not one being captured into a graph.
void check_stream(const Device& device, void* stream) {
    // The special handles name a different stream on every thread (per-thread) or the legacy
    // default stream: LibTorch's caching allocator keys its blocks by the handle, so it cannot
    // tell their work apart.
    const auto handle = static_cast<cudaStream_t>(stream);
    if (handle == cudaStreamLegacy || handle == cudaStreamPerThread) {
        const char* name = handle == cudaStreamLegacy ? "cudaStreamLegacy" : "cudaStreamPerThread";
        fail(LIMN_ERR_INVALID_ARGUMENT, std::string("cuda_stream is ") + name +
                                            ", a special handle; pass a stream from cudaStreamCreate (or NULL: "
                                            "limn's own streams)");
    }
    int stream_device = -1;
    const cudaError_t err = cudaStreamGetDevice(handle, &stream_device);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        fail(LIMN_ERR_INVALID_ARGUMENT, std::string("cuda_stream is not a CUDA stream limn can use (") +
                                            cudaGetErrorString(err) + ")");
    }
    if (stream_device != device.index) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "cuda_stream is a stream of cuda:" + std::to_string(stream_device) +
                                            ", not of the model's " + device.id());
    }
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    const cudaError_t captured = cudaStreamIsCapturing(handle, &capture);
    if (captured != cudaSuccess) (void)cudaGetLastError();
    if (captured != cudaSuccess || capture != cudaStreamCaptureStatusNone) {
        fail(LIMN_ERR_INVALID_ARGUMENT, std::string("cuda_stream is being captured into a CUDA graph") +
                                            (captured != cudaSuccess ? std::string(" or cannot be asked (") +
                                                                           cudaGetErrorString(captured) + ")"
                                                                     : std::string()) +
                                            "; limn's calls cannot be captured (they may wait on the host)");
    }
}

// The calls queued on callers' streams, per device: for each stream, an event recorded after the
// latest call's work (work on one stream runs in order, so the latest event covers the earlier
// calls). A model's weights are freed only after these have completed.
class QueuedCalls {
public:
    static QueuedCalls& instance() {
        static auto* calls = new QueuedCalls();  // never destroyed: models may be freed at exit
        return *calls;
    }

    void record(int device, cudaStream_t stream) noexcept {
        try {
            const c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));  // the stream's device
            record_on(device, stream);
        } catch (...) {  // not remembered: a device in error has no queued work to wait for
        }
    }

    // Waits for every call queued on `device` so far (not for other work on the device).
    void wait(int device) {
        std::vector<std::shared_ptr<void>> events;
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            auto found = devices_.find(device);
            if (found == devices_.end()) return;
            for (const auto& [stream, event] : found->second) events.push_back(event);
        }
        for (const auto& event : events) {
            if (cudaEventSynchronize(static_cast<cudaEvent_t>(event.get())) != cudaSuccess) (void)cudaGetLastError();
        }
    }

private:
    void record_on(int device, cudaStream_t stream) {
        cudaError_t err = cudaSuccess;
        std::shared_ptr<void> kept = recorded_event(stream, err);
        if (!kept) return;
        const std::lock_guard<std::mutex> lock(mutex_);
        std::map<cudaStream_t, std::shared_ptr<void>>& latest = devices_[device];
        if (latest.size() >= 64) {
            // Streams come and go: forget those whose last call has ended (no wait).
            for (auto it = latest.begin(); it != latest.end();) {
                const cudaError_t done = cudaEventQuery(static_cast<cudaEvent_t>(it->second.get()));
                (void)cudaGetLastError();  // "not ready" included: leave no error for LibTorch's next check
                it = done == cudaErrorNotReady ? std::next(it) : latest.erase(it);
            }
        }
        latest[stream] = std::move(kept);
    }

    std::mutex mutex_;
    std::map<int, std::map<cudaStream_t, std::shared_ptr<void>>> devices_;
};
#endif

}  // namespace

const CallImages& call_images() {
    static const CallImages host;
    return current_images ? *current_images : host;
}

void check_image_memory(const ImageMemory& memory, const Device& model_device, const std::string& model_name,
                        const NamedImages& images) {
    if (memory.cuda_stream && !model_device.is_cuda()) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "cuda_stream is set, but model '" + model_name + "' runs on " +
                                            model_device.id() + ", not on a CUDA device");
    }
    if (memory.on_device()) {
        const std::string asked = memory.where.index < 0 ? "cuda" : "cuda:" + std::to_string(memory.where.index);
        if (!model_device.is_cuda() || (memory.where.index >= 0 && memory.where.index != model_device.index)) {
            fail(LIMN_ERR_INVALID_ARGUMENT,
                 "images_device is '" + asked + "', but model '" + model_name + "' runs on " + model_device.id() +
                     ": device images must be in the memory of the model's device" +
                     (LIMN_WITH_CUDA ? "" : " (and this build of limn has no CUDA support)"));
        }
        for (const auto& [image, what] : images) check_device_image(*image, what, model_device);
    }
#if LIMN_WITH_CUDA
    if (memory.cuda_stream) check_stream(model_device, memory.cuda_stream);
#endif
}

ImagesScope::ImagesScope(const ImageMemory& memory, const Device& model_device, const std::string& model_name,
                         const NamedImages& images)
    : outer_(current_images) {
    check_image_memory(memory, model_device, model_name, images);
    if (memory.on_device()) images_.device = model_device;
    images_.cuda_stream = memory.cuda_stream;
#if LIMN_WITH_CUDA
    if (model_device.is_cuda() && !memory.on_device()) {
        // Host images are read (and written) by the host: it first waits for what the caller
        // queued on its stream before the call (or the job's submit), such as a copy into them.
        if (memory.ready) {
            C10_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(memory.ready.get())));
        } else if (memory.cuda_stream) {
            C10_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(memory.cuda_stream)));
        }
    } else if (memory.ready && model_device.is_cuda()) {
        C10_CUDA_CHECK(cudaStreamWaitEvent(thread_stream(model_device).stream(),
                                           static_cast<cudaEvent_t>(memory.ready.get()), 0));
    }
#endif
    current_images = &images_;
}

ImagesScope::~ImagesScope() {
    current_images = outer_;
#if LIMN_WITH_CUDA
    // The call's work is queued on the caller's stream: it is remembered until it has run.
    if (images_.queued()) {
        QueuedCalls::instance().record(images_.device.index, static_cast<cudaStream_t>(images_.cuda_stream));
    }
#endif
}

std::shared_ptr<void> record_ready_event(const Device& device, void* stream) {
#if LIMN_WITH_CUDA
    if (!device.is_cuda() || !stream) return nullptr;  // the stream was checked (check_image_memory)
    const c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device.index));
    cudaError_t err = cudaSuccess;
    std::shared_ptr<void> event = recorded_event(static_cast<cudaStream_t>(stream), err);
    if (!event) {
        fail(err == cudaErrorMemoryAllocation ? LIMN_ERR_OUT_OF_MEMORY : LIMN_ERR_INVALID_ARGUMENT,
             std::string("cuda_stream: an event could not be recorded on it (") + cudaGetErrorString(err) + ")");
    }
    return event;
#else
    (void)device;
    (void)stream;
    return nullptr;
#endif
}

StreamScope::StreamScope(const Device& device) {
#if LIMN_WITH_CUDA
    if (!device.is_cuda()) return;
    const CallImages& images = call_images();
    if (images.cuda_stream) {
        // The caller's stream (ImagesScope has checked that the model, hence `device`, is on CUDA).
        guard_ = std::make_shared<c10::cuda::CUDAStreamGuard>(c10::cuda::getStreamFromExternal(
            static_cast<cudaStream_t>(images.cuda_stream), static_cast<c10::DeviceIndex>(device.index)));
        return;
    }
    guard_ = std::make_shared<c10::cuda::CUDAStreamGuard>(thread_stream(device));
#else
    (void)device;
#endif
}

StreamScope::~StreamScope() = default;

void synchronize(const Device& device) {
#if LIMN_WITH_CUDA
    if (device.is_cuda()) c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device.index)).synchronize();
#else
    (void)device;
#endif
}

void wait_for_queued_calls(const Device& device) {
#if LIMN_WITH_CUDA
    if (device.is_cuda()) QueuedCalls::instance().wait(device.index);
#else
    (void)device;
#endif
}

uint64_t plannable_bytes(uint64_t cap, uint64_t device_free, uint64_t reserved, uint64_t allocated) {
    // The allocator's unused cached blocks can be reused, but only as far as their sizes fit:
    // count half of them. A cap bounds what the allocator may reserve, not what is allocated.
    const uint64_t cached = reserved > allocated ? reserved - allocated : 0;
    uint64_t room = device_free + cached / 2;
    if (cap > 0) room = std::min(room, (cap > reserved ? cap - reserved : 0) + cached / 2);
    // A fifth of headroom for the allocator's rounding (blocks of 512 B to 2 MiB steps) and
    // fragmentation, so that running out of memory stays the exception.
    return room / 5 * 4;
}

void set_memory_limit(const Device& device, uint64_t bytes) {
    const DeviceDescription desc = describe_device(device);
    if (bytes > desc.total_memory && desc.total_memory > 0) {
        fail(LIMN_ERR_INVALID_ARGUMENT, "memory limit of " + std::to_string(bytes) + " bytes for " +
                                            device.id() + " exceeds the device's " +
                                            std::to_string(desc.total_memory) + " bytes");
    }
#if LIMN_WITH_CUDA
    if (device.is_cuda()) {
        init_cuda_allocator();
        const double fraction =
            bytes == 0 ? 1.0 : static_cast<double>(bytes) / static_cast<double>(desc.total_memory);
        c10::cuda::CUDACachingAllocator::setMemoryFraction(fraction,
                                                           static_cast<c10::DeviceIndex>(device.index));
    }
#endif
    std::lock_guard<std::mutex> lock(limits_mutex);
    if (bytes == 0) {
        limits.erase(device.id());
    } else {
        limits[device.id()] = bytes;
    }
}

uint64_t memory_limit(const Device& device) {
    std::lock_guard<std::mutex> lock(limits_mutex);
    auto it = limits.find(device.id());
    return it == limits.end() ? 0 : it->second;
}

void release_cached_memory(const Device& device) {
    if (!device.is_cuda()) {
        for (const auto& a : live_arenas()) a->release();
        return;
    }
#if LIMN_WITH_CUDA
    if (device.is_cuda()) {
        init_cuda_allocator();
        // LibTorch (2.11) releases the unused cached blocks of every device at once; it has no
        // call for one device. Only this explicit request does it, never limn on its own.
        c10::cuda::CUDACachingAllocator::emptyCache();
    }
#else
    (void)device;
#endif
}

MemoryStats memory_stats(const Device& device) {
    MemoryStats s;
    const DeviceDescription desc = describe_device(device);
    s.device_total = desc.total_memory;
    s.device_free = desc.free_memory;
    s.limit = memory_limit(device);
    if (!device.is_cuda()) {
        uint64_t current = 0, peak = 0;
        process_rss(current, peak);
        s.reserved = current;
        s.peak_reserved = peak;
        s.allocated = static_cast<uint64_t>(std::max<int64_t>(0, cpu_live.load()));
        s.peak_allocated = static_cast<uint64_t>(std::max<int64_t>(0, cpu_peak.load()));
        s.cached = cpu_arena_cached_bytes();
        s.allocations = cpu_allocations.load(std::memory_order_relaxed);
        return s;
    }
#if LIMN_WITH_CUDA
    init_cuda_allocator();
    using c10::CachingAllocator::StatType;
    const auto stats =
        c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device.index));
    const auto agg = static_cast<size_t>(StatType::AGGREGATE);
    s.allocated = static_cast<uint64_t>(stats.allocated_bytes[agg].current);
    s.peak_allocated = static_cast<uint64_t>(stats.allocated_bytes[agg].peak);
    s.reserved = static_cast<uint64_t>(stats.reserved_bytes[agg].current);
    s.peak_reserved = static_cast<uint64_t>(stats.reserved_bytes[agg].peak);
    s.cached = s.reserved > s.allocated ? s.reserved - s.allocated : 0;
    s.allocations = static_cast<uint64_t>(stats.num_device_alloc);
#endif
    return s;
}

void reset_peak_memory(const Device& device) {
    if (!device.is_cuda()) {
        cpu_peak.store(cpu_live.load());
        // Since Linux 4.0, writing 5 to clear_refs resets the peak resident set (VmHWM).
        std::ofstream out("/proc/self/clear_refs");
        out << "5";
        out.flush();
        if (!out) fail(LIMN_ERR_UNSUPPORTED, "cannot reset the peak resident set of this process "
                                             "(/proc/self/clear_refs is not writable)");
        return;
    }
#if LIMN_WITH_CUDA
    init_cuda_allocator();
    c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device.index));
#endif
}

namespace {

// Receives LibTorch's per-allocation reports (the hook its memory profiler uses) on one thread.
class PeakProbe final : public c10::MemoryReportingInfoBase {
public:
    void reportMemoryUsage(void*, int64_t alloc_size, size_t, size_t, c10::Device device) override {
        current_ += alloc_size;
        if (current_ > peak_) peak_ = current_;
        if (device.is_cpu()) count_cpu_report(alloc_size);
    }
    bool memoryProfilingEnabled() const override { return true; }
    uint64_t peak() const { return static_cast<uint64_t>(peak_); }

private:
    int64_t current_ = 0;
    int64_t peak_ = 0;
};

uint64_t mem_available_bytes() {
    std::ifstream in("/proc/meminfo");
    std::string key, unit;
    uint64_t kib = 0;
    while (in >> key >> kib >> unit) {
        if (key == "MemAvailable:") return kib * 1024;
    }
    return static_cast<uint64_t>(sysconf(_SC_AVPHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace

CpuTensorScope::CpuTensorScope() {
    static const auto counter = std::make_shared<CpuTensorCounter>();
    guard_ = std::make_unique<c10::DebugInfoGuard>(c10::DebugInfoKind::PROFILER_STATE, counter);
}

CpuTensorScope::~CpuTensorScope() = default;

uint64_t peak_allocated_during(const std::function<void()>& body) {
    auto probe = std::make_shared<PeakProbe>();
    {
        c10::DebugInfoGuard guard(c10::DebugInfoKind::PROFILER_STATE, probe);
        body();
    }
    return probe->peak();
}

uint64_t available_memory(const Device& device) {
    const uint64_t cap = memory_limit(device);
    // On the CPU without a cap the arenas' unused blocks are free memory too: runs reuse them.
    if (!device.is_cuda()) return (cap > 0 ? cap : mem_available_bytes() + cpu_arena_cached_bytes()) / 10 * 9;
    const MemoryStats s = memory_stats(device);
    return plannable_bytes(cap, s.device_free, s.reserved, s.allocated);
}

}  // namespace limn::core

namespace limn::core {
bool is_out_of_memory(const std::exception& e, std::string* detail) noexcept {
    try {
        if (dynamic_cast<const c10::OutOfMemoryError*>(&e) || dynamic_cast<const std::bad_alloc*>(&e)) {
            const auto* c = dynamic_cast<const c10::Error*>(&e);
            if (detail) *detail = c ? error_summary(c->what_without_backtrace()) : "host allocation failed";
            return true;
        }
        if (const auto* f = dynamic_cast<const Failure*>(&e)) {
            if (detail) *detail = f->what();
            return f->status() == LIMN_ERR_OUT_OF_MEMORY;
        }
        // LibTorch's CPU allocator throws a plain c10::Error, and the TorchScript interpreter
        // rethrows errors from inside a model as std::runtime_error with the original text
        // somewhere in a traceback: look for the allocators' words line by line.
        const auto* c = dynamic_cast<const c10::Error*>(&e);
        const std::string text = c ? c->what_without_backtrace() : e.what();
        size_t begin = 0;
        while (begin < text.size()) {
            size_t end = text.find('\n', begin);
            if (end == std::string::npos) end = text.size();
            const std::string line = text.substr(begin, end - begin);
            if (line.find("out of memory") != std::string::npos ||
                line.find("not enough memory") != std::string::npos ||
                line.find("can't allocate memory") != std::string::npos) {
                if (detail) *detail = line;
                return true;
            }
            begin = end + 1;
        }
    } catch (...) {
    }
    return false;
}

}  // namespace limn::core
