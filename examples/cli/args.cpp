// The command line: the usage text and the option table it is made from, and the parser, which
// refuses what a command would ignore (an option it does not take, a value given twice).
#include "cli.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

namespace limn_cli {
namespace {

enum Command : unsigned {
    kCartoonize = 1,
    kRestoreFaces = 2,
    kDetectFaces = 4,
    kInfo = 8,
    kDevices = 16,
    kImages = kCartoonize | kRestoreFaces,
    kLoads = kImages | kDetectFaces,  // the commands that load and run models
};

const std::map<std::string, unsigned>& commands() {
    static const std::map<std::string, unsigned> table = {{"cartoonize", kCartoonize},
                                                          {"restore-faces", kRestoreFaces},
                                                          {"detect-faces", kDetectFaces},
                                                          {"info", kInfo},
                                                          {"devices", kDevices}};
    return table;
}

const char* kUsageLines = R"(usage:
  limn cartoonize IN... -o OUT [options]      cartoonize photos (files or folders); with
                                              --head-model and --detector (or --landmarks),
                                              DCT-Net's compound stylization of faces
  limn restore-faces IN... -o OUT --detector FILE [options]
                                              restore the faces a face_detect model finds
  limn restore-faces IN -o OUT --landmarks FILE [options]
                                              restore the faces whose 5 landmarks FILE lists
  limn detect-faces IN --detector FILE [options]
                                              print the faces found, as a landmarks file
  limn info MODEL [--json]                    describe a limn model (a file or a fetched name)
  limn devices [--json]                       list the CPU and CUDA devices
  limn models list|fetch NAME|path NAME|remove NAME
                                              models by name: download, verify and convert the
                                              official weights into the cache (`limn models
                                              --help`; runs python3 -m limn_models.fetch)
  limn --version | --help
)";

const char* kLandmarksText = R"(
LANDMARKS FILE: one face per line, 10 numbers: x y of the left eye, right eye, nose tip, left and
right mouth corners, in photo pixels. Empty lines and lines starting with # are ignored.
detect-faces writes this format (with each face's box and score in a # line before it).
)";

const char* kExitText = R"(
exit status: 0 success, 1 some image failed, 2 bad command line, 3 model or device unusable.
Inputs are never overwritten; outputs are written to a temporary file and renamed.
)";

long long parse_int(const std::string& flag, const std::string& v, long long lo, long long hi) {
    char* end = nullptr;
    errno = 0;
    const long long n = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end || errno || n < lo || n > hi) {
        throw UsageError(flag + " expects an integer in " + std::to_string(lo) + ".." + std::to_string(hi) +
                         ", not '" + v + "'");
    }
    return n;
}

float parse_float(const std::string& flag, const std::string& v) {
    char* end = nullptr;
    const float x = std::strtof(v.c_str(), &end);
    if (v.empty() || *end) throw UsageError(flag + " expects a number, not '" + v + "'");
    return x;
}

// A value whose range the library checks: `check` (a limn_*_options_check through the C++
// wrapper) refuses what the call would, before any model loads, so the range is written once, in
// the core.
template <typename T, typename Check>
T library_checked(const std::string& flag, const std::string& v, T x, Check check) {
    try {
        check(x);
    } catch (const limn::Error& e) {
        throw UsageError(flag + " " + v + ": " + e.what());
    }
    return x;
}

// A size: decimal digits with an optional fraction and a K, M, G or T suffix (powers of 1024).
// Whole numbers are exact; under 1 MiB is no limit any model can work in.
uint64_t parse_bytes(const std::string& v) {
    const std::string bad = "--memory-limit expects a size such as 2G or 512M, not '" + v + "'";
    static const std::string units = "KMGT";
    std::string digits = v;
    int shift = 0;
    if (!digits.empty()) {
        const size_t u = units.find(static_cast<char>(std::toupper(static_cast<unsigned char>(digits.back()))));
        if (u != std::string::npos) {
            shift = 10 * static_cast<int>(u + 1);
            digits.pop_back();
        }
    }
    const size_t dot = digits.find('.');
    const std::string whole = digits.substr(0, dot), part = dot == std::string::npos ? "" : digits.substr(dot + 1);
    const auto decimal = [](const std::string& s) {
        return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
    };
    if (whole.empty() || !decimal(whole) || !decimal(part) || (dot != std::string::npos && part.empty())) {
        throw UsageError(bad);
    }
    uint64_t bytes = 0;
    if (part.empty()) {
        errno = 0;
        const unsigned long long n = std::strtoull(whole.c_str(), nullptr, 10);
        if (errno || (shift > 0 && n > (UINT64_MAX >> shift))) throw UsageError(bad + ": too large");
        bytes = static_cast<uint64_t>(n) << shift;
    } else {
        const long double n = std::strtold(digits.c_str(), nullptr) * static_cast<long double>(uint64_t{1} << shift);
        if (!(n < 18446744073709551615.0L)) throw UsageError(bad + ": too large");
        bytes = static_cast<uint64_t>(n);
    }
    if (bytes < (uint64_t{1} << 20)) {
        throw UsageError("--memory-limit " + v + " is " + std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes") +
                         ", less than any model works in (at least 1M; sizes take K, M, G or T: 512M, 2G)");
    }
    return bytes;
}

// A device argument's syntax ("cpu", "auto", "cuda", "cuda:N"): anything else is a command-line
// error (exit 2); a device that is well written but absent is found when the model loads (exit 3).
std::string device_arg(const std::string& v) {
    if (v == "cpu" || v == "auto" || v == "cuda") return v;
    const std::string n = v.rfind("cuda:", 0) == 0 ? v.substr(5) : "";
    if (!n.empty() && n.size() <= 4 && (n == "0" || n[0] != '0') &&
        std::all_of(n.begin(), n.end(), [](unsigned char c) { return std::isdigit(c); })) {
        return v;
    }
    throw UsageError("--device expects cpu, cuda, cuda:N or auto, not '" + v + "'");
}

void set_format(Args& a, const std::string& v) {
    const std::optional<int32_t> format = limn::name_value(LIMN_NAMES_FILE_FORMAT, v);
    if (!format || *format == LIMN_FILE_FORMAT_AUTO) {
        throw UsageError("--format expects png, jpg, bmp, tga or webp, not '" + v + "'");
    }
    a.format = v;
    a.format_set = true;
}

void set_precision(Args& a, const std::string& v) {
    if (!limn::parse_precision(v, &a.precision)) {
        throw UsageError("--precision expects fp32, fp16, bf16, tf32 or auto, not '" + v + "'");
    }
}

[[noreturn]] void ray_only(Args&, const std::string& flag, const std::string&) {
    throw UsageError(flag + " is for the pip-installed limn command (pip install 'limn[ray]'), which runs "
                            "the photos on Ray; this binary works on one machine");
}

// One option: its names, its value's name (nullptr: a flag), the commands that take it, its help
// (lines after the first indented by the usage text) and what it sets.
struct Option {
    const char* short_name;
    const char* long_name;
    const char* value;
    unsigned commands;
    const char* help;
    void (*apply)(Args&, const std::string& flag, const std::string& value);
};

using S = const std::string&;
const std::vector<Option>& options() {
    static const std::vector<Option> table = {
        {"-o", "--output", "PATH", kLoads,
         "output file, or folder (created) for several inputs or a folder input;\n"
         "`-` as the input reads stdin, `-o -` writes stdout (needs --format)",
         [](Args& a, S, S v) { a.output = v; }},
        {"-m", "--model", "MODEL", kImages,
         "model file, or the name of a fetched model (`limn models list`);\n"
         "cartoonize default: $LIMN_CARTOON_MODEL, else the built-in\n"
         "classical cartoon filter installed with the tool",
         [](Args& a, S, S v) { a.model = v; }},
        {"-d", "--device", "DEV", kLoads, "cpu, cuda, cuda:N or auto (default auto); -g N is -d cuda:N",
         [](Args& a, S, S v) { a.device = device_arg(v); }},
        {"-g", "--gpu", "N", kLoads, nullptr, [](Args& a, S, S v) { a.device = device_arg("cuda:" + v); }},
        {"-p", "--precision", "P", kLoads, "fp32, fp16, bf16, tf32 or auto (default auto)",
         [](Args& a, S, S v) { set_precision(a, v); }},
        {nullptr, "--memory-limit", "N", kLoads, "cap device memory, e.g. 2G, 512M (bytes without a suffix)",
         [](Args& a, S, S v) { a.memory_limit = parse_bytes(v); }},
        {nullptr, "--max-side", "N", kCartoonize,
         "cartoonize: work at most N pixels on the longer side, then scale back",
         [](Args& a, S f, S v) { a.max_side = static_cast<int32_t>(parse_int(f, v, 1, 1 << 20)); }},
        {nullptr, "--strength", "S", kImages, "0..1 blend over the input (default 1)",
         [](Args& a, S f, S v) {
             a.strength = library_checked(f, v, parse_float(f, v),
                                          [](float x) { limn::CartoonizeOptions().strength(x).check(); });
         }},
        {nullptr, "--tile", "N", kCartoonize, "cartoonize: tile side (default: from the memory budget)",
         [](Args& a, S f, S v) { a.tile = static_cast<int32_t>(parse_int(f, v, 1, 1 << 20)); }},
        {nullptr, "--format", "EXT", kImages,
         "output format for folder outputs: png (default), jpg, bmp, tga, webp",
         [](Args& a, S, S v) { set_format(a, v); }},
        {nullptr, "--quality", "Q", kImages, "JPEG and WebP quality 1..100 (default 95; WebP 100: lossless)",
         [](Args& a, S f, S v) {
             const auto q = static_cast<int32_t>(parse_int(f, v, INT32_MIN, INT32_MAX));
             a.quality = library_checked(f, v, q, [](int32_t x) { limn::check_jpeg_quality(x); });
         }},
        {nullptr, "--detector", "MODEL", kLoads, "face_detect model (e.g. retinaface) that finds the faces",
         [](Args& a, S, S v) { a.detector = v; }},
        {nullptr, "--landmarks", "FILE", kImages,
         "the faces' 5 landmarks (LANDMARKS FILE below) instead of --detector;\n"
         "restore-faces, and cartoonize with --head-model; one input photo",
         [](Args& a, S, S v) { a.landmarks = v; }},
        {nullptr, "--head-model", "MODEL", kCartoonize,
         "cartoonize: a head model (DCT-Net cartoon_h.pb, role \"head\") that\n"
         "stylizes each aligned face over the whole-photo result",
         [](Args& a, S, S v) { a.head_model = v; }},
        {nullptr, "--working-size", "N", kCartoonize,
         "cartoonize with --head-model: shorter side at most N while working\n"
         "(default 720, as DCT-Net's pipeline; 0: full size)",
         [](Args& a, S f, S v) { a.working_size = static_cast<int32_t>(parse_int(f, v, 0, 1 << 20)); }},
        {nullptr, "--threshold", "T", kLoads, "detector score threshold 0..1 (default 0.9)",
         [](Args& a, S f, S v) {
             a.threshold = library_checked(f, v, parse_float(f, v),
                                           [](float x) { limn::DetectFacesOptions().score_threshold(x).check(); });
         }},
        {nullptr, "--min-face-size", "N", kRestoreFaces,
         "restore-faces: leave faces under N pixels across alone (default 16)",
         [](Args& a, S f, S v) {
             a.min_face_size = library_checked(f, v, parse_float(f, v),
                                               [](float x) { limn::RestoreFacesOptions().min_face_size(x).check(); });
         }},
        {nullptr, "--max-pixels", "N", kLoads, "refuse images over N pixels (default 64 Mpx)",
         [](Args& a, S f, S v) { a.max_pixels = static_cast<uint64_t>(parse_int(f, v, 1, 1ll << 40)); }},
        {nullptr, "--overwrite", nullptr, kLoads, "replace output files even when they are read-only",
         [](Args& a, S, S) { a.overwrite = true; }},
        {nullptr, "--skip-existing", nullptr, kImages, "leave inputs alone whose output file exists",
         [](Args& a, S, S) { a.skip_existing = true; }},
        {nullptr, "--dry-run", nullptr, kImages,
         "cartoonize, restore-faces: print each input and the output it would be\n"
         "written to, then stop (loads no model, writes nothing; --json: as JSON)",
         [](Args& a, S, S) { a.dry_run = true; }},
        {"-j", "--jobs", "N", kImages,
         "photos in flight at once on the one model (load, compute and save\n"
         "overlap; default 1)",
         [](Args& a, S f, S v) { a.jobs = static_cast<int>(parse_int(f, v, 1, 64)); }},
        {nullptr, "--ray", "[ADDR]", kImages,
         "cartoonize, restore-faces: run the photos on a Ray cluster (ADDR, else a\n"
         "local Ray), --replicas N actors of --cpus-per-replica / --gpus-per-replica\n"
         "each; the pip-installed `limn` does this (pip install 'limn[ray]')",
         ray_only},
        {nullptr, "--replicas", "N", kImages, nullptr, ray_only},
        {nullptr, "--cpus-per-replica", "N", kImages, nullptr, ray_only},
        {nullptr, "--gpus-per-replica", "N", kImages, nullptr, ray_only},
        {"-r", "--recursive", nullptr, kImages, "folders: their subfolders too (the output keeps their layout)",
         [](Args& a, S, S) { a.recursive = true; }},
        {"-q", "--quiet", nullptr, kLoads, "no progress bar, no summary", [](Args& a, S, S) { a.quiet = true; }},
        {nullptr, "--json", nullptr, kImages | kInfo | kDevices, "info, devices, --dry-run: print JSON",
         [](Args& a, S, S) { a.json = true; }},
    };
    return table;
}

// "  -o, --output PATH      help..." as the usage text writes it.
std::string option_help(const Option& o) {
    std::string head = std::string("  ") + (o.short_name ? std::string(o.short_name) + ", " : "    ") + o.long_name;
    if (o.value) head += std::string(" ") + o.value;
    head.resize(std::max<size_t>(head.size(), 24), ' ');
    std::string out = head + " ";
    for (const char* p = o.help; *p; ++p) out += *p == '\n' ? "\n" + std::string(25, ' ') : std::string(1, *p);
    return out + "\n";
}

// The usage lines of `command` (all of them for "").
std::string usage_lines(const std::string& command) {
    std::istringstream lines(kUsageLines);
    std::string line, out;
    bool keep = false;
    for (std::getline(lines, line); std::getline(lines, line);) {  // after "usage:"
        if (line.rfind("  limn ", 0) == 0) {
            keep = command.empty() || line.rfind("  limn " + command + " ", 0) == 0 || line == "  limn " + command;
        }
        if (keep) out += line + "\n";
    }
    return "usage:\n" + out;
}

const Option* find_option(const std::string& flag) {
    for (const Option& o : options()) {
        if (flag == o.long_name || (o.short_name && flag == o.short_name)) return &o;
    }
    return nullptr;
}

// argv after the program name, with --option=value split in two.
std::vector<std::string> split_args(int argc, char** argv) {
    std::vector<std::string> rest;
    bool options_done = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const size_t eq = arg.find('=');
        if (!options_done && arg.rfind("--", 0) == 0 && eq != std::string::npos && eq > 2) {
            rest.push_back(arg.substr(0, eq));
            rest.push_back(arg.substr(eq + 1));
        } else {
            rest.push_back(arg);
        }
        if (arg == "--") options_done = true;
    }
    return rest;
}

// Refusals that need the whole command line.
void check_combinations(const Args& a) {
    if (a.json && commands().at(a.command) & kImages && !a.dry_run) {
        throw UsageError("--json prints the plan of --dry-run as JSON; " + a.command + " without --dry-run has none");
    }
}

}  // namespace

std::string usage_text(const std::string& command) {
    const auto it = commands().find(command);
    const unsigned bit = it == commands().end() ? ~0u : it->second;
    std::string text = usage_lines(it == commands().end() ? "" : command) + "\noptions:\n";
    for (const Option& o : options()) {
        if (o.help && (o.commands & bit)) text += option_help(o);
    }
    if (bit & kImages) text += kLandmarksText;
    return text + kExitText;
}

Args parse(int argc, char** argv) {
    Args a;
    const std::vector<std::string> rest = split_args(argc, argv);
    if (rest.empty()) throw UsageError("no command given");
    a.command = rest[0];
    const auto command = commands().find(a.command);
    if (command == commands().end()) {
        if (std::find(rest.begin(), rest.end(), "--help") != rest.end()) throw HelpRequest{""};
        throw UsageError("unknown command '" + a.command + "'");
    }
    std::set<std::string> given;  // options that take a value, once each
    bool options_done = false;
    for (size_t i = 1; i < rest.size(); ++i) {
        const std::string& f = rest[i];
        if (options_done || f.empty() || f[0] != '-' || f == "-") {
            a.inputs.push_back(f);
            continue;
        }
        if (f == "--") {
            options_done = true;
            continue;
        }
        if (f == "--help" || f == "-h") throw HelpRequest{a.command};
        const Option* o = find_option(f);
        if (!o) throw UsageError("unknown option " + f);
        if (!(o->commands & command->second)) {
            throw UsageError(a.command + " does not take " + f + " (`limn " + a.command + " --help` lists its options)");
        }
        std::string value;
        if (o->value && o->apply != ray_only) {
            if (i + 1 >= rest.size()) throw UsageError(f + " needs a value");
            value = rest[++i];
            const std::string key = o->long_name == std::string("--gpu") ? "--device" : o->long_name;
            if (!given.insert(key).second) throw UsageError(f + " is given twice; give it once");
        }
        o->apply(a, f, value);
    }
    check_combinations(a);
    return a;
}

}  // namespace limn_cli
