#include "device.h"

#include "cpu_features.h"

#include <ATen/Context.h>
#include <torch/version.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <thread>

#include "error.h"
#include "pixels.h"

#if LIMN_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

namespace limn::core {

DeviceRequest parse_device(std::string_view text) {
    DeviceRequest r;
    if (text.empty() || text == "auto") {
        r.kind = DeviceRequest::Kind::Auto;
        return r;
    }
    if (text == "cpu") {
        r.kind = DeviceRequest::Kind::Cpu;
        return r;
    }
    if (text == "cuda") {
        r.kind = DeviceRequest::Kind::Cuda;
        r.index = -1;
        return r;
    }
    constexpr std::string_view prefix = "cuda:";
    if (text.substr(0, prefix.size()) == prefix && text.size() > prefix.size() &&
        text.size() <= prefix.size() + 4) {
        const char* first = text.data() + prefix.size();
        const char* last = text.data() + text.size();
        int index = -1;
        auto [ptr, ec] = std::from_chars(first, last, index);
        if (ec == std::errc() && ptr == last && index >= 0 && (first[0] != '0' || last - first == 1)) {
            r.kind = DeviceRequest::Kind::Cuda;
            r.index = index;
            return r;
        }
    }
    fail(LIMN_ERR_INVALID_ARGUMENT, "invalid device '" + std::string(text) +
                                        "': expected \"cpu\", \"cuda\", \"cuda:N\" or \"auto\"");
}

std::string Device::id() const {
    return type == LIMN_DEVICE_CUDA ? "cuda:" + std::to_string(index) : std::string("cpu");
}

int cuda_device_count() {
#if LIMN_WITH_CUDA
    if (!at::globalContext().hasCUDA()) return 0;
    return static_cast<int>(c10::cuda::device_count());
#else
    return 0;
#endif
}

Device resolve_device(const DeviceRequest& request) {
    Device d;
    switch (request.kind) {
        case DeviceRequest::Kind::Cpu:
            return d;
        case DeviceRequest::Kind::Auto:
            if (cuda_device_count() > 0) {
                d.type = LIMN_DEVICE_CUDA;
                d.index = 0;
            }
            return d;
        case DeviceRequest::Kind::Cuda:
            break;
    }
    const int count = cuda_device_count();
#if LIMN_WITH_CUDA
    const char* built = "";
#else
    const char* built = " (this build of limn has no CUDA support)";
#endif
    const std::string asked = request.index < 0 ? "cuda" : "cuda:" + std::to_string(request.index);
    if (count == 0) {
        fail(LIMN_ERR_DEVICE_UNAVAILABLE,
             "device '" + asked + "' is not available: no usable CUDA device on this machine" + built);
    }
    int index = request.index;
#if LIMN_WITH_CUDA
    if (index < 0) index = static_cast<int>(c10::cuda::current_device());
#endif
    if (index >= count) {
        fail(LIMN_ERR_DEVICE_UNAVAILABLE, "device '" + asked + "' is not available: this machine has " +
                                              std::to_string(count) + " CUDA device(s), cuda:0 to cuda:" +
                                              std::to_string(count - 1));
    }
    d.type = LIMN_DEVICE_CUDA;
    d.index = index;
    return d;
}

Device resolve_device(const char* text) {
    return resolve_device(parse_device(text ? std::string_view(text) : std::string_view()));
}

ImageMemory parse_image_memory(const char* images_device, void* cuda_stream, const char* what) {
    ImageMemory m;
    m.cuda_stream = cuda_stream;
    if (!images_device) return m;
    const std::string text(images_device);
    DeviceRequest r;
    try {
        r = parse_device(text);
    } catch (const Failure&) {
        r.kind = DeviceRequest::Kind::Auto;
    }
    if (text.empty() || r.kind == DeviceRequest::Kind::Auto) {
        fail(LIMN_ERR_INVALID_ARGUMENT, std::string(what) + " '" + valid_utf8(text) +
                                            "' is not a place for images: expected NULL or \"cpu\" (host "
                                            "memory), \"cuda\" or \"cuda:N\" (the model's CUDA device)");
    }
    m.where = r;
    return m;
}

#if LIMN_WITH_CUDA
namespace {

// The driver functions the device-image checks ask (reached through the runtime: liblimn does not
// link the driver); null where the driver does not give them.
template <typename Fn>
Fn driver_entry(const char* name) {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
    if (cudaGetDriverEntryPointByVersion(name, &fn, 12000, cudaEnableDefault, &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess || !fn) {
        (void)cudaGetLastError();
        return nullptr;
    }
    return reinterpret_cast<Fn>(fn);
}

using GetRange = int (*)(unsigned long long*, size_t*, unsigned long long);  // CUresult, CUdeviceptr
using GetAttribute = int (*)(void*, int, unsigned long long);                // CUpointer_attribute
constexpr int kPointerAttributeMapped = 13;                                   // CU_POINTER_ATTRIBUTE_MAPPED

using GetContext = int (*)(void**);  // CUresult cuCtxGetCurrent(CUcontext*)

// A context current on this thread, as the driver's queries need: a thread whose current device
// already is `device` may have none yet, and then gets the device's primary context (a context
// the caller made current is left as it is).
struct DeviceContext {
    explicit DeviceContext(const Device& device) : guard(static_cast<c10::DeviceIndex>(device.index)) {
        static const GetContext get_current = driver_entry<GetContext>("cuCtxGetCurrent");
        void* current = nullptr;
        if (get_current && get_current(&current) == 0 && current) return;
        if (cudaSetDevice(device.index) != cudaSuccess) (void)cudaGetLastError();
    }
    c10::cuda::CUDAGuard guard;
};

// The allocation that holds `address` (its base and size), from the driver's cuMemGetAddressRange;
// false where it cannot be asked.
bool allocation_range(const Device& device, const void* address, uintptr_t& base, size_t& size) {
    static const GetRange get_range = driver_entry<GetRange>("cuMemGetAddressRange");
    if (!get_range) return false;
    const DeviceContext context(device);
    unsigned long long b = 0;
    size_t n = 0;
    if (get_range(&b, &n, reinterpret_cast<uintptr_t>(address)) != 0) return false;  // not CUDA_SUCCESS
    base = static_cast<uintptr_t>(b);
    size = n;
    return true;
}

// False where the driver says `address` is not mapped to memory (a virtual-memory reservation's
// unmapped part); true where it is, or where it cannot be asked.
bool maybe_mapped(const Device& device, const void* address) {
    static const GetAttribute get_attribute = driver_entry<GetAttribute>("cuPointerGetAttribute");
    if (!get_attribute) return true;
    const DeviceContext context(device);
    int mapped = 1;
    if (get_attribute(&mapped, kPointerAttributeMapped, reinterpret_cast<uintptr_t>(address)) != 0) return true;
    return mapped != 0;
}

// What CUDA says of `address` (type cudaMemoryTypeUnregistered where it knows nothing of it).
cudaPointerAttributes attributes_of(const void* address) {
    cudaPointerAttributes attr{};
    if (cudaPointerGetAttributes(&attr, address) != cudaSuccess) {
        (void)cudaGetLastError();  // not sticky; leave no error for LibTorch's next check
        attr = cudaPointerAttributes{};
        attr.type = cudaMemoryTypeUnregistered;
    }
    return attr;
}

bool is_device_memory(const cudaPointerAttributes& attr, const Device& device) {
    return (attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged) && attr.device == device.index;
}

// Failure unless `address` (named `what`) is device or managed memory of `device`; what CUDA says
// of it.
cudaPointerAttributes check_device_address(const void* address, const std::string& what, const Device& device) {
    const cudaPointerAttributes attr = attributes_of(address);
    if (is_device_memory(attr, device)) return attr;
    if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged) {
        fail(LIMN_ERR_INVALID_ARGUMENT, what + " is " +
                                            (attr.type == cudaMemoryTypeHost ? "pinned host memory" : "host memory") +
                                            ", not memory of " + device.id() + " (options->images_device says it is)");
    }
    fail(LIMN_ERR_INVALID_ARGUMENT, what + " is memory of cuda:" + std::to_string(attr.device) +
                                        ", not of the model's " + device.id());
}

[[noreturn]] void fail_past_buffer(const std::string& what, uintptr_t offset, size_t span, const Device& device) {
    fail(LIMN_ERR_INVALID_ARGUMENT, what + " image's byte " + std::to_string(offset) + " of " + std::to_string(span) +
                                        " (from data to the last row's end) is not memory of " + device.id() +
                                        ": its stride or height reach past the buffer");
}

}  // namespace
#endif

void check_device_image(const limn_image& image, const std::string& what, const Device& device) {
    if (!device.is_cuda()) return;
#if LIMN_WITH_CUDA
    // check_image has vouched for the description: the last byte the rows span is addressable.
    const size_t row = static_cast<size_t>(image.width) * static_cast<size_t>(bytes_per_pixel(image.format));
    const size_t span = static_cast<size_t>(image.height - 1) * image.stride + row;
    // The driver's "mapped" is asked of device memory only (managed memory is mapped on demand).
    const bool ask_mapped =
        check_device_address(image.data, what + " image data", device).type == cudaMemoryTypeDevice;
    // Every byte the rows span must be mapped: a kernel reading or writing past it would fault,
    // and that ends every CUDA call of the process. The allocations that hold them must follow
    // each other without a gap (one, or the chunks of a virtual-memory allocation, such as
    // LibTorch's expandable segments, which cuMemGetAddressRange reports one chunk at a time).
    const auto first = reinterpret_cast<uintptr_t>(image.data);
    const uintptr_t end = first + span;  // check_image: no overflow
    uintptr_t at = first;
    for (int chunk = 0; at < end; ++chunk) {
        uintptr_t base = 0;
        size_t size = 0;
        if (ask_mapped && !maybe_mapped(device, reinterpret_cast<const void*>(at))) {
            fail_past_buffer(what, at - first, span, device);
        }
        if (!allocation_range(device, reinterpret_cast<const void*>(at), base, size)) {
            if (chunk == 0) break;  // the driver cannot be asked: only the last byte is looked at below
            fail_past_buffer(what, at - first, span, device);
        }
        if (base + size <= at) break;  // not a range that holds `at`: the last byte decides
        at = base + size;
        if (chunk == 100000) break;  // a span over that many allocations: the last byte decides
    }
    if (at < end && (!is_device_memory(attributes_of(image.data + span - 1), device) ||
                     (ask_mapped && !maybe_mapped(device, image.data + span - 1)))) {
        fail_past_buffer(what, span - 1, span, device);
    }
#else
    (void)image;
    fail(LIMN_ERR_INVALID_ARGUMENT, what + " image is device memory, but this build of limn has no CUDA support");
#endif
}

namespace {

std::string cpu_model_name() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) == 0) {
            auto colon = line.find(':');
            if (colon != std::string::npos) {
                auto start = line.find_first_not_of(" \t", colon + 1);
                if (start != std::string::npos) return line.substr(start);
            }
        }
    }
    return "CPU";
}

uint64_t meminfo_bytes(const char* key) {
    std::ifstream in("/proc/meminfo");
    std::string name;
    uint64_t kib = 0;
    std::string unit;
    while (in >> name >> kib >> unit) {
        if (name == key) return kib * 1024;
    }
    return 0;
}

}  // namespace

DeviceDescription describe_device(const Device& device) {
    DeviceDescription d;
    d.device = device;
    if (!device.is_cuda()) {
        d.name = cpu_model_name();
        const long pages = sysconf(_SC_PHYS_PAGES);
        const long page = sysconf(_SC_PAGESIZE);
        d.total_memory = pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * page : 0;
        d.free_memory = meminfo_bytes("MemAvailable:");
        d.multiprocessors = static_cast<int>(std::thread::hardware_concurrency());
        d.cpu = cpu_native_precisions();
        return d;
    }
#if LIMN_WITH_CUDA
    const cudaDeviceProp* prop = at::cuda::getDeviceProperties(device.index);
    d.name = prop->name;
    d.compute_capability = prop->major * 10 + prop->minor;
    d.multiprocessors = prop->multiProcessorCount;
    d.total_memory = prop->totalGlobalMem;
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device.index));
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
        d.free_memory = free_bytes;
        d.total_memory = total_bytes;
    } else {
        (void)cudaGetLastError();  // clear the sticky-free error state for the next call
    }
#endif
    return d;
}

std::vector<DeviceDescription> list_devices() {
    std::vector<DeviceDescription> out;
    out.push_back(describe_device(Device{}));
    const int count = cuda_device_count();
    for (int i = 0; i < count; ++i) out.push_back(describe_device(Device{LIMN_DEVICE_CUDA, i}));
    return out;
}

std::string build_info() {
    std::ostringstream s;
    s << "limn " << LIMN_VERSION_STRING << " (ABI " << LIMN_ABI_VERSION << ")\n";
    s << "LibTorch " << TORCH_VERSION << "\n";
#if LIMN_WITH_CUDA
    s << "CUDA compiled in: yes (runtime " << CUDART_VERSION / 1000 << "." << (CUDART_VERSION % 1000) / 10
      << ")\n";
#else
    s << "CUDA compiled in: no\n";
#endif
    const auto devices = list_devices();
    s << "CUDA usable now: " << (devices.size() > 1 ? "yes" : "no") << " (" << devices.size() - 1
      << " device(s))\n";
    s << "devices:";
    for (const auto& d : devices) {
        s << "\n  " << d.device.id() << ": " << d.name;
        if (d.device.is_cuda()) {
            s << " (compute " << d.compute_capability / 10 << "." << d.compute_capability % 10 << ", "
              << d.total_memory / (1024 * 1024) << " MiB)";
        } else {
            s << " (" << d.multiprocessors << " threads, " << d.total_memory / (1024 * 1024) << " MiB)";
        }
    }
    // What compiled (.pt2) CPU packages are checked against when they load.
    s << "\nCPU features: " << cpu_feature_list();
    return s.str();
}

}  // namespace limn::core
