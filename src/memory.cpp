#include "memory.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <string>

#include "error.h"

#include <c10/core/Allocator.h>
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

// Live and peak bytes of the CPU tensors counted by CpuTensorScope.
std::atomic<int64_t> cpu_live{0};
std::atomic<int64_t> cpu_peak{0};

void count_cpu(int64_t delta) {
    const int64_t now = cpu_live.fetch_add(delta) + delta;
    int64_t peak = cpu_peak.load();
    while (now > peak && !cpu_peak.compare_exchange_weak(peak, now)) {
    }
}

// Receives LibTorch's per-allocation reports (the hook its memory profiler uses).
class CpuTensorCounter final : public c10::MemoryReportingInfoBase {
public:
    void reportMemoryUsage(void*, int64_t alloc_size, size_t, size_t, c10::Device device) override {
        if (device.is_cpu()) count_cpu(alloc_size);
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

StreamScope::StreamScope(const Device& device) {
#if LIMN_WITH_CUDA
    if (!device.is_cuda()) return;
    // One stream per thread and device, taken from the pool on the thread's first call: a new one
    // every call would scatter the caching allocator's blocks (cached per stream) over many.
    thread_local std::map<int, c10::cuda::CUDAStream> streams;
    auto it = streams.find(device.index);
    if (it == streams.end()) {
        it = streams.emplace(device.index, c10::cuda::getStreamFromPool(
                                               false, static_cast<c10::DeviceIndex>(device.index))).first;
    }
    guard_ = std::make_shared<c10::cuda::CUDAStreamGuard>(it->second);
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
        if (device.is_cpu()) count_cpu(alloc_size);
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
    if (!device.is_cuda()) return (cap > 0 ? cap : mem_available_bytes()) / 10 * 9;
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
