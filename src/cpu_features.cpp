#include "cpu_features.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define LIMN_X86 1
#else
#define LIMN_X86 0
#endif

namespace limn::core {
namespace {

struct Feature {
    const char* name;
    bool present;
};

#if LIMN_X86
struct Regs {
    unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned sub) {
    Regs r;
    if (!__get_cpuid_count(leaf, sub, &r.a, &r.b, &r.c, &r.d)) r = Regs{};
    return r;
}

uint64_t xcr0() {
    uint32_t lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t(hi) << 32) | lo;
}
#endif

// The feature table; the exporter's list (models/limn_models/pt2.py, X86_FEATURES) uses the same
// names.
std::vector<Feature> detect() {
    std::vector<Feature> f;
#if LIMN_X86
    const Regs l1 = cpuid(1, 0);
    const unsigned max_leaf = cpuid(0, 0).a;
    const Regs l7 = max_leaf >= 7 ? cpuid(7, 0) : Regs{};
    const Regs l71 = max_leaf >= 7 ? cpuid(7, 1) : Regs{};
    const Regs e1 = cpuid(0x80000001u, 0);
    const auto bit = [](unsigned reg, int n) { return ((reg >> n) & 1u) != 0; };
    // The OS must save the wider registers: XMM/YMM (bits 1, 2), opmask/ZMM (5, 6, 7), AMX
    // tile config and data (17, 18).
    const bool osxsave = bit(l1.c, 27);
    const uint64_t xcr = osxsave ? xcr0() : 0;
    const bool ymm = (xcr & 0x6) == 0x6;
    const bool zmm = ymm && (xcr & 0xE0) == 0xE0;
    const bool tiles = (xcr & 0x60000) == 0x60000;
    f = {
        {"sse4_1", bit(l1.c, 19)},
        {"sse4_2", bit(l1.c, 20)},
        {"popcnt", bit(l1.c, 23)},
        {"movbe", bit(l1.c, 22)},
        {"abm", bit(e1.c, 5)},
        {"bmi1", bit(l7.b, 3)},
        {"bmi2", bit(l7.b, 8)},
        {"f16c", ymm && bit(l1.c, 29)},
        {"fma", ymm && bit(l1.c, 12)},
        {"avx", ymm && bit(l1.c, 28)},
        {"avx2", ymm && bit(l7.b, 5)},
        {"avx_vnni", ymm && bit(l71.a, 4)},
        {"avx512f", zmm && bit(l7.b, 16)},
        {"avx512dq", zmm && bit(l7.b, 17)},
        {"avx512cd", zmm && bit(l7.b, 28)},
        {"avx512bw", zmm && bit(l7.b, 30)},
        {"avx512vl", zmm && bit(l7.b, 31)},
        {"avx512ifma", zmm && bit(l7.b, 21)},
        {"avx512vbmi", zmm && bit(l7.c, 1)},
        {"avx512_vbmi2", zmm && bit(l7.c, 6)},
        {"avx512_vnni", zmm && bit(l7.c, 11)},
        {"avx512_bitalg", zmm && bit(l7.c, 12)},
        {"avx512_vpopcntdq", zmm && bit(l7.c, 14)},
        {"avx512_bf16", zmm && bit(l71.a, 5)},
        {"avx512_fp16", zmm && bit(l7.d, 23)},
        {"avx512_vp2intersect", zmm && bit(l7.d, 8)},
        {"gfni", bit(l7.c, 8)},
        {"vaes", ymm && bit(l7.c, 9)},
        {"vpclmulqdq", ymm && bit(l7.c, 10)},
        {"amx_tile", tiles && bit(l7.d, 24)},
        {"amx_bf16", tiles && bit(l7.d, 22)},
        {"amx_int8", tiles && bit(l7.d, 25)},
        {"amx_fp16", tiles && bit(l71.a, 21)},
    };
#endif
    return f;
}

// The table with $LIMN_CPU_DISABLE's features turned off.
std::vector<Feature> detect_allowed() {
    std::vector<Feature> f = detect();
    const char* off = std::getenv("LIMN_CPU_DISABLE");
    if (!off) return f;
    std::string names = off;
    std::replace(names.begin(), names.end(), ',', ' ');
    size_t begin = 0;
    while (begin < names.size()) {
        size_t end = names.find(' ', begin);
        if (end == std::string::npos) end = names.size();
        const std::string name = names.substr(begin, end - begin);
        for (Feature& feature : f) {
            if (name == feature.name) feature.present = false;
        }
        begin = end + 1;
    }
    return f;
}

const std::vector<Feature>& features() {
    static const std::vector<Feature> table = detect_allowed();
    return table;
}

}  // namespace

std::vector<std::string> missing_cpu_features(const std::vector<std::string>& wanted) {
    std::vector<std::string> missing;
    for (const std::string& name : wanted) {
        const auto& table = features();
        const auto it = std::find_if(table.begin(), table.end(),
                                     [&](const Feature& f) { return name == f.name; });
        if (it == table.end() || !it->present) missing.push_back(name);
    }
    return missing;
}

std::string cpu_feature_list() {
    std::string out;
    for (const std::string& name : cpu_features_present()) {
        if (!out.empty()) out += ' ';
        out += name;
    }
    return out;
}

std::vector<std::string> cpu_features_present() {
    std::vector<std::string> out;
    for (const Feature& f : features()) {
        if (f.present) out.emplace_back(f.name);
    }
    return out;
}

NativePrecisions native_precisions(const std::vector<std::string>& features) {
    const auto has = [&](const char* name) {
        return std::find(features.begin(), features.end(), name) != features.end();
    };
    // AMX first: where both exist, oneDNN's bf16 and fp16 convolutions run on the tiles.
    NativePrecisions p;
    if (has("amx_bf16")) {
        p.bf16 = "amx_bf16";
    } else if (has("avx512_bf16")) {
        p.bf16 = "avx512_bf16";
    }
    if (has("amx_fp16")) {
        p.fp16 = "amx_fp16";
    } else if (has("avx512_fp16")) {
        p.fp16 = "avx512_fp16";
    }
    return p;
}

NativePrecisions cpu_native_precisions() { return native_precisions(cpu_features_present()); }

}  // namespace limn::core
