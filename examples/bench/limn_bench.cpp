// limn-bench: times the raw model run through the public API (what an application gets).
//
//   limn-bench --model M.pt [--device cpu|cuda|cuda:N|auto] [--precision auto|fp32|fp16|bf16|tf32]
//              [--size 512x512 ...] [--batch N] [--warmup N] [--iters N] [--channels-last 0|1]
//              [--memory-limit BYTES]
//
// For each size: warm-up runs, then timed runs; prints the median, 10th and 90th percentile time
// per image, throughput, and memory on the model's device during the timed runs: the peak bytes
// of live tensors (on the CPU too), the working part of it per megapixel, and the allocator's or
// (CPU) the process's peak.
#include <limn/limn.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Args {
    std::string model, device = "auto", precision = "auto";
    std::vector<std::pair<int, int>> sizes;
    int batch = 1, warmup = 3, iters = 10, channels_last = -1;
    uint64_t memory_limit = 0;
};

[[noreturn]] void usage(const char* msg) {
    std::fprintf(stderr,
                 "%s\nusage: limn-bench --model M.pt [--device D] [--precision P] [--size WxH ...] "
                 "[--batch N] [--warmup N] [--iters N] [--channels-last 0|1] [--memory-limit BYTES]\n",
                 msg);
    std::exit(2);
}

limn_precision parse_precision(const std::string& p) {
    limn_precision out;
    if (!limn::parse_precision(p, &out)) usage(("unknown precision: " + p).c_str());
    return out;
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(("missing value for " + k).c_str());
            return argv[++i];
        };
        auto number = [&]() -> long long {
            const std::string v = value();
            char* end = nullptr;
            const long long n = std::strtoll(v.c_str(), &end, 10);
            if (!end || *end || n < 0) usage(("not a number for " + k + ": " + v).c_str());
            return n;
        };
        if (k == "--model") a.model = value();
        else if (k == "--device") a.device = value();
        else if (k == "--precision") a.precision = value();
        else if (k == "--batch") a.batch = static_cast<int>(number());
        else if (k == "--warmup") a.warmup = static_cast<int>(number());
        else if (k == "--iters") a.iters = static_cast<int>(number());
        else if (k == "--channels-last") a.channels_last = static_cast<int>(number());
        else if (k == "--memory-limit") a.memory_limit = static_cast<uint64_t>(number());
        else if (k == "--size") {
            const std::string v = value();
            int w = 0, h = 0;
            if (std::sscanf(v.c_str(), "%dx%d", &w, &h) != 2 || w <= 0 || h <= 0) usage(("bad size: " + v).c_str());
            a.sizes.emplace_back(w, h);
        } else if (k == "--help" || k == "-h") {
            usage("limn-bench: time the raw run of a limn model");
        } else {
            usage(("unknown argument: " + k).c_str());
        }
    }
    if (a.model.empty()) usage("--model is required");
    if (a.batch < 1 || a.iters < 1) usage("--batch and --iters must be at least 1");
    return a;
}

double percentile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    const double pos = q * (v.size() - 1);
    const size_t lo = static_cast<size_t>(pos);
    const size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

}  // namespace

int main(int argc, char** argv) {
    const Args args = parse(argc, argv);
    try {
        limn::ModelOptions opts;
        opts.device(args.device).precision(parse_precision(args.precision));
        if (args.channels_last >= 0) opts.channels_last(args.channels_last != 0);
        const auto load_start = std::chrono::steady_clock::now();
        const limn::Model model(args.model, opts);
        const double load_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start).count();
        const limn_model_info info = model.info();
        const std::string dev = info.device;
        if (args.memory_limit) limn::set_memory_limit(dev, args.memory_limit);

        std::vector<std::pair<int, int>> sizes = args.sizes;
        if (sizes.empty()) {
            const int s = info.fixed_width > 0 ? info.fixed_width : 512;
            sizes.emplace_back(s, info.fixed_height > 0 ? info.fixed_height : s);
        }
        std::printf("model %s (%s) on %s in %s, load+warm-up %.0f ms, batch %d, %d warm-up + %d timed runs\n",
                    info.name, args.model.c_str(), info.device, limn::precision_name(info.precision).c_str(), load_ms,
                    args.batch, args.warmup, args.iters);
        // Memory: peak bytes of live tensors during the timed runs (weights included), the part
        // above the weights per megapixel of the batch, and what the allocator (CUDA) or the
        // process (CPU: resident set) held at its peak.
        std::printf("%-11s %12s %12s %12s %10s %14s %12s %14s\n", "size", "median ms/img", "p10 ms/img",
                    "p90 ms/img", "Mpx/s", "peak alloc MiB", "work MiB/Mpx", "peak resv MiB");

        for (const auto& [w, h] : sizes) {
            std::vector<std::vector<uint8_t>> in_bytes, out_bytes;
            std::vector<limn_image> ins, outs;
            uint32_t s = 12345;
            for (int b = 0; b < args.batch; ++b) {
                in_bytes.emplace_back(static_cast<size_t>(w) * h * 3);
                for (auto& v : in_bytes.back()) v = static_cast<uint8_t>((s = s * 1664525u + 1013904223u) >> 24);
                out_bytes.emplace_back(static_cast<size_t>(w) * h * 3);
            }
            for (int b = 0; b < args.batch; ++b) {
                ins.push_back({in_bytes[b].data(), w, h, static_cast<size_t>(w) * 3, LIMN_PIXEL_RGB8});
                outs.push_back({out_bytes[b].data(), w, h, static_cast<size_t>(w) * 3, LIMN_PIXEL_RGB8});
            }
            for (int i = 0; i < args.warmup; ++i) model.run_batch(ins, outs);
            limn::reset_peak_memory(dev);
            const uint64_t resting = limn::memory_stats(dev).allocated;
            std::vector<double> per_image_ms;
            for (int i = 0; i < args.iters; ++i) {
                const auto t0 = std::chrono::steady_clock::now();
                model.run_batch(ins, outs);
                const auto t1 = std::chrono::steady_clock::now();
                per_image_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count() / args.batch);
            }
            const limn_memory_stats mem = limn::memory_stats(dev);
            const double med = percentile(per_image_ms, 0.5);
            char size_text[32];
            std::snprintf(size_text, sizeof size_text, "%dx%d", w, h);
            const double mpx = static_cast<double>(w) * h * args.batch / 1e6;
            const double work = mem.peak_allocated > resting ? double(mem.peak_allocated - resting) : 0.0;
            std::printf("%-11s %12.2f %12.2f %12.2f %10.2f %14.1f %12.1f %14.1f\n", size_text, med,
                        percentile(per_image_ms, 0.1), percentile(per_image_ms, 0.9),
                        (static_cast<double>(w) * h / 1e6) / (med / 1e3), mem.peak_allocated / 1048576.0,
                        work / 1048576.0 / mpx, mem.peak_reserved / 1048576.0);
        }
    } catch (const limn::Error& e) {
        std::fprintf(stderr, "limn-bench: %s (%s)\n", e.what(), limn_status_string(e.status()));
        return 1;
    }
    return 0;
}
