// limn: the command-line tool. Cartoonizes photos, restores faces, describes models and devices.
// Built only on the public C++ wrapper (limn.hpp), like any application.
#include <limn/limn.hpp>

#include "landmarks.h"

#include <unistd.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// Exit codes (also in the usage text).
constexpr int kOk = 0;
constexpr int kFailed = 1;    // some image could not be processed
constexpr int kUsage = 2;     // bad command line
constexpr int kNoModel = 3;   // the model or device could not be used

const char* kUsageText = R"(usage:
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
  limn devices                                list the CPU and CUDA devices
  limn models list|fetch NAME|path NAME|remove NAME
                                              models by name: download, verify and convert the
                                              official weights into the cache (`limn models
                                              --help`; runs python3 -m limn_models.fetch)
  limn --version | --help

options:
  -o, --output PATH      output file, or folder (created) for several inputs or a folder input;
                         `-` as the input reads stdin, `-o -` writes stdout (needs --format)
  -m, --model MODEL      model file, or the name of a fetched model (`limn models list`);
                         cartoonize default: $LIMN_CARTOON_MODEL, else the built-in
                         classical cartoon filter installed with the tool
  -d, --device DEV       cpu, cuda, cuda:N or auto (default auto); -g N is -d cuda:N
  -p, --precision P      fp32, fp16, bf16, tf32 or auto (default auto)
      --memory-limit N   cap device memory, e.g. 2G, 512M (bytes without a suffix)
      --max-side N       cartoonize: work at most N pixels on the longer side, then scale back
      --strength S       0..1 blend over the input (default 1)
      --tile N           cartoonize: tile side (default: from the memory budget)
      --format EXT       output format for folder outputs: png (default), jpg, bmp, tga, webp
      --quality Q        JPEG and WebP quality 1..100 (default 95; WebP 100: lossless)
      --detector MODEL   face_detect model (e.g. retinaface) that finds the faces
      --head-model MODEL cartoonize: a head model (DCT-Net cartoon_h.pb, role "head") that
                         stylizes each aligned face over the whole-photo result
      --working-size N   cartoonize with --head-model: shorter side at most N while working
                         (default 720, as DCT-Net's pipeline; 0: full size)
      --threshold T      detector score threshold 0..1 (default 0.9)
      --min-face-size N  restore-faces: leave faces under N pixels across alone (default 16)
      --max-pixels N     refuse images over N pixels (default 64 Mpx)
      --overwrite        replace output files even when they are read-only
      --skip-existing    leave inputs alone whose output file exists
      --dry-run          cartoonize, restore-faces: print each input and the output it would be
                         written to, then stop (loads no model, writes nothing; --json: as JSON)
  -j, --jobs N           photos in flight at once on the one model (load, compute and save
                         overlap; default 1)
      --ray [ADDR]       cartoonize, restore-faces: run the photos on a Ray cluster (ADDR, else a
                         local Ray), --replicas N actors of --cpus-per-replica / --gpus-per-replica
                         each; the pip-installed `limn` does this (pip install 'limn[ray]')
  -r, --recursive        folders: their subfolders too (the output keeps their layout)
  -q, --quiet            no progress bar, no summary
      --json             info, devices, --dry-run: print JSON

LANDMARKS FILE: one face per line, 10 numbers: x y of the left eye, right eye, nose tip, left and
right mouth corners, in photo pixels. Empty lines and lines starting with # are ignored.
detect-faces writes this format (with each face's box and score in a # line before it).

exit status: 0 success, 1 some image failed, 2 bad command line, 3 model or device unusable.
Inputs are never overwritten; outputs are written to a temporary file and renamed.
)";

struct Args {
    std::string command;
    std::vector<std::string> inputs;
    std::string output, model, device = "auto", landmarks, detector, head_model, format = "png";
    limn_precision precision = LIMN_PRECISION_AUTO;
    uint64_t memory_limit = 0;
    // Unset: the library's default (its *_options_init), never a second copy of it here.
    std::optional<int32_t> max_side, tile, quality, working_size;
    std::optional<float> strength, threshold, min_face_size;
    bool quiet = false;
    bool json = false;
    bool overwrite = false;      // replace read-only output files
    bool recursive = false;      // -r: folders' subfolders too (outputs keep the layout)
    bool skip_existing = false;  // leave inputs whose output exists alone
    bool dry_run = false;        // print the plan (inputs -> outputs) and stop
    int jobs = 1;                // -j: photos in flight at once
    bool format_set = false;
    std::optional<uint64_t> max_pixels;
};

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// `limn COMMAND --help`: that command's usage lines and the options, on stdout, exit 0.
struct HelpRequest {
    std::string command;
};

void print_help(const std::string& command) {
    const std::string text = kUsageText;
    const size_t options = text.find("\noptions:");
    std::istringstream lines(text.substr(0, options));
    std::string line, out;
    bool keep = false;
    for (std::getline(lines, line); std::getline(lines, line);) {  // after "usage:"
        if (line.rfind("  limn ", 0) == 0) keep = line.rfind("  limn " + command + " ", 0) == 0 || line == "  limn " + command;
        if (keep) out += line + "\n";
    }
    std::cout << "usage:\n" << (out.empty() ? text.substr(7, options - 7) : out) << text.substr(options);
}

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

float parse_float(const std::string& flag, const std::string& v, float lo, float hi, const char* range) {
    char* end = nullptr;
    const float x = std::strtof(v.c_str(), &end);
    if (v.empty() || *end || !(x >= lo && x <= hi)) {
        throw UsageError(flag + " expects a number in " + range + ", not '" + v + "'");
    }
    return x;
}

uint64_t parse_bytes(const std::string& v) {
    static const std::map<char, uint64_t> units = {{'K', 1ull << 10}, {'M', 1ull << 20}, {'G', 1ull << 30}, {'T', 1ull << 40}};
    std::string digits = v;
    uint64_t unit = 1;
    if (!digits.empty() && units.count(static_cast<char>(std::toupper(digits.back())))) {
        unit = units.at(static_cast<char>(std::toupper(digits.back())));
        digits.pop_back();
    }
    char* end = nullptr;
    errno = 0;
    const double n = std::strtod(digits.c_str(), &end);
    if (digits.empty() || *end || errno || !(n > 0) || n * unit > 1.8e19) {
        throw UsageError("--memory-limit expects a size such as 2G or 512M, not '" + v + "'");
    }
    return static_cast<uint64_t>(n * unit);
}

// A device argument's syntax ("cpu", "auto", "cuda", "cuda:N"): anything else is a command-line
// error (exit 2); a device that is well written but absent is found when the model loads (exit 3).
std::string device_arg(const std::string& v) {
    if (v == "cpu" || v == "auto" || v == "cuda") return v;
    if (v.rfind("cuda:", 0) == 0 && v.size() > 5 && v.size() <= 9 &&
        std::all_of(v.begin() + 5, v.end(), [](unsigned char c) { return std::isdigit(c); })) {
        return v;
    }
    throw UsageError("--device expects cpu, cuda, cuda:N or auto, not '" + v + "'");
}

Args parse(int argc, char** argv) {
    Args a;
    std::vector<std::string> rest;
    for (int i = 1; i < argc; ++i) {
        // --option=value is --option value.
        const std::string arg = argv[i];
        const size_t eq = arg.find('=');
        if (arg.rfind("--", 0) == 0 && eq != std::string::npos && eq > 2) {
            rest.push_back(arg.substr(0, eq));
            rest.push_back(arg.substr(eq + 1));
        } else {
            rest.push_back(arg);
        }
    }
    if (rest.empty()) throw UsageError("no command given");
    a.command = rest[0];
    for (size_t i = 1; i < rest.size(); ++i) {
        const std::string& f = rest[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= rest.size()) throw UsageError(f + " needs a value");
            return rest[++i];
        };
        if (f == "-o" || f == "--output") a.output = value();
        else if (f == "-m" || f == "--model") a.model = value();
        else if (f == "-d" || f == "--device") a.device = device_arg(value());
        else if (f == "-g" || f == "--gpu") a.device = device_arg("cuda:" + value());
        else if (f == "-r" || f == "--recursive") a.recursive = true;
        else if (f == "--skip-existing") a.skip_existing = true;
        else if (f == "--dry-run") a.dry_run = true;
        else if (f == "--ray" || f == "--replicas" || f == "--cpus-per-replica" || f == "--gpus-per-replica") {
            throw UsageError(f + " is for the pip-installed limn command (pip install 'limn[ray]'), which runs "
                                 "the photos on Ray; this binary works on one machine");
        }
        else if (f == "-j" || f == "--jobs") a.jobs = static_cast<int>(parse_int(f, value(), 1, 64));
        else if (f == "--landmarks") a.landmarks = value();
        else if (f == "--detector") a.detector = value();
        else if (f == "--head-model") a.head_model = value();
        else if (f == "--working-size") a.working_size = static_cast<int32_t>(parse_int(f, value(), 0, 1 << 20));
        else if (f == "--format") {
            a.format = value();
            a.format_set = true;
        }
        else if (f == "-p" || f == "--precision") {
            const std::string p = value();
            if (!limn::parse_precision(p, &a.precision)) {
                throw UsageError("--precision expects fp32, fp16, bf16, tf32 or auto, not '" + p + "'");
            }
        } else if (f == "--memory-limit") a.memory_limit = parse_bytes(value());
        else if (f == "--max-side") a.max_side = static_cast<int32_t>(parse_int(f, value(), 1, 1 << 20));
        else if (f == "--tile") a.tile = static_cast<int32_t>(parse_int(f, value(), 1, 1 << 20));
        else if (f == "--quality") a.quality = static_cast<int32_t>(parse_int(f, value(), 1, 100));
        else if (f == "--strength") a.strength = parse_float(f, value(), 0.0f, 1.0f, "0..1");
        else if (f == "--threshold") a.threshold = parse_float(f, value(), 0.0f, 1.0f, "0..1");
        else if (f == "--min-face-size") a.min_face_size = parse_float(f, value(), 0.0f, 1e6f, "0..1000000");
        else if (f == "-q" || f == "--quiet") a.quiet = true;
        else if (f == "--json") a.json = true;
        else if (f == "--overwrite") a.overwrite = true;
        else if (f == "--max-pixels") a.max_pixels = static_cast<uint64_t>(parse_int(f, value(), 1, 1ll << 40));
        else if (f == "--help" || f == "-h") throw HelpRequest{a.command};
        else if (!f.empty() && f[0] == '-' && f != "-") throw UsageError("unknown option " + f);
        else a.inputs.push_back(f);
    }
    const std::string fmt = a.format;
    if (fmt != "png" && fmt != "jpg" && fmt != "jpeg" && fmt != "bmp" && fmt != "tga" && fmt != "webp") {
        throw UsageError("--format expects png, jpg, bmp, tga or webp, not '" + fmt + "'");
    }
    return a;
}

bool is_image_name(const fs::path& p) {
    std::string e = p.extension().string();
    std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
    for (const char* x : {".jpg", ".jpeg", ".png", ".bmp", ".tga", ".webp", ".tif", ".tiff", ".gif", ".psd", ".pnm",
                          ".ppm", ".pgm", ".hdr", ".pic"})
        if (e == x) return true;
    return false;
}

struct Job {
    fs::path in, out;
};

// What a folder input held that is not an image limn reads, and the inputs --skip-existing left
// alone (both said in the summary).
std::vector<fs::path> g_skipped_files;
size_t g_existing_outputs = 0;

// Inputs (files, folders of images) -> (input, output) pairs. Refuses any output that is an input.
std::string model_file(const std::string& arg);

// Refuses to write `out` over any of `kept` (inputs, model and landmark files), or over a
// read-only file unless --overwrite: limn never destroys what it reads.
void check_output(const Args& a, const fs::path& out, const std::vector<fs::path>& kept) {
    std::error_code ec;
    if (!fs::exists(out, ec)) return;
    for (const auto& k : kept) {
        std::error_code e1;
        if (fs::exists(k, e1) && fs::equivalent(out, k, e1)) {
            throw UsageError("output " + out.string() + " is " + k.string() + ", which " + a.command +
                             " reads; limn never overwrites what it reads");
        }
    }
    // No write permission for anyone: read-only, even to root (whom the permission bits do not
    // stop; a rename would replace the file silently).
    struct stat st {};
    if (!a.overwrite && ::stat(out.c_str(), &st) == 0 && (st.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) == 0) {
        throw UsageError("output " + out.string() + " is read-only; pass --overwrite to replace it");
    }
}

// The files a command reads besides its inputs: models and the landmarks file (registry names
// resolve into the cache).
std::vector<fs::path> read_files(const Args& a) {
    std::vector<fs::path> kept;
    for (const std::string* p : {&a.model, &a.detector, &a.head_model, &a.landmarks}) {
        if (p->empty()) continue;
        try {
            kept.emplace_back(model_file(*p));
        } catch (const limn::Error&) {
            kept.emplace_back(*p);
        }
    }
    return kept;
}

std::vector<Job> plan_jobs(const Args& a) {
    if (a.inputs.empty()) throw UsageError(a.command + " needs at least one input");
    if (a.output.empty()) throw UsageError(a.command + " needs -o OUT");
    // Pipes: `-` reads the photo from stdin, `-o -` writes the result to stdout (--format names it).
    const bool pipe_in = std::find(a.inputs.begin(), a.inputs.end(), "-") != a.inputs.end();
    if (pipe_in && a.inputs.size() != 1) throw UsageError("- (stdin) is the only input it can be given with");
    if (a.output == "-") {
        if (a.inputs.size() != 1 || fs::is_directory(a.inputs[0])) throw UsageError("-o - (stdout) takes one input photo");
        if (!a.format_set) throw UsageError("-o - (stdout) needs --format png, jpg, bmp, tga or webp");
        if (!pipe_in && !fs::exists(a.inputs[0])) throw UsageError("input " + a.inputs[0] + " does not exist");
        return {Job{a.inputs[0], "-"}};
    }
    if (pipe_in) {
        std::vector<fs::path> kept = read_files(a);
        check_output(a, a.output, kept);
        if (!is_image_name(a.output)) {
            throw UsageError("output " + a.output + " needs an image extension (.png, .jpg, .bmp, .tga, .webp)");
        }
        const fs::path folder = fs::path(a.output).parent_path();
        std::error_code made;
        if (!folder.empty()) fs::create_directories(folder, made);
        return {Job{"-", a.output}};
    }
    std::vector<fs::path> files;
    std::map<std::string, fs::path> roots;  // an image found in a folder input -> that folder
    bool from_folder = false;
    for (const auto& in : a.inputs) {
        std::error_code ec;
        if (fs::is_directory(in, ec)) {
            from_folder = true;
            std::vector<fs::path> found;
            const auto consider = [&](const fs::directory_entry& e) {
                if (!e.is_regular_file()) return;
                if (is_image_name(e.path())) {
                    found.push_back(e.path());
                } else {
                    g_skipped_files.push_back(e.path());
                }
            };
            if (a.recursive) {
                for (const auto& e : fs::recursive_directory_iterator(in, ec)) consider(e);
            } else {
                for (const auto& e : fs::directory_iterator(in, ec)) consider(e);
            }
            if (found.empty()) {
                throw UsageError("no images in the folder " + in + " (looked for .jpg, .png, .bmp, .tga, ...)");
            }
            std::sort(found.begin(), found.end());
            for (const auto& f : found) roots.emplace(f.string(), fs::path(in));
            files.insert(files.end(), found.begin(), found.end());
        } else if (!fs::exists(in, ec)) {
            throw UsageError("input " + in + " does not exist");  // before any model is loaded
        } else {
            files.emplace_back(in);
        }
    }
    const fs::path out(a.output);
    std::error_code ec;
    const bool named_folder = fs::is_directory(out, ec) || a.output.back() == '/';
    if ((from_folder || files.size() > 1) && !named_folder && is_image_name(out)) {
        throw UsageError("several inputs need -o FOLDER; '" + a.output + "' names one image file");
    }
    const bool out_is_folder = from_folder || files.size() > 1 || named_folder;
    std::vector<Job> jobs;
    for (const auto& f : files) {
        Job j{f, out};
        if (out_is_folder) {
            // -r keeps the subfolders of a folder input under the output folder.
            const auto root = roots.find(f.string());
            const fs::path sub = a.recursive && root != roots.end() ? f.parent_path().lexically_relative(root->second)
                                                                    : fs::path();
            j.out = (out / sub / (f.stem().string() + "." + a.format)).lexically_normal();
        }
        if (a.skip_existing && fs::exists(j.out, ec)) {
            ++g_existing_outputs;
            continue;
        }
        jobs.push_back(j);
    }
    if (jobs.empty()) throw UsageError("every output exists already (--skip-existing): nothing to do");
    std::vector<fs::path> kept = read_files(a);
    kept.insert(kept.end(), files.begin(), files.end());
    std::map<std::string, fs::path> written;  // output -> the input written there
    for (const auto& j : jobs) {
        check_output(a, j.out, kept);
        if (!out_is_folder && is_image_name(j.out) == false) {
            throw UsageError("output " + j.out.string() + " needs an image extension (.png, .jpg, .bmp, .tga, .webp)");
        }
        const std::string key = j.out.lexically_normal().string();
        if (const auto it = written.find(key); it != written.end()) {
            throw UsageError("inputs " + it->second.string() + " and " + j.in.string() + " would both be written to " +
                             j.out.string() + "; rename one or cartoonize them into separate folders");
        }
        written.emplace(key, j.in);
    }
    // The output folders exist before any work (a dry run creates nothing).
    for (const auto& j : a.dry_run ? std::vector<Job>() : jobs) {
        const fs::path folder = j.out.parent_path();
        if (folder.empty()) continue;
        std::error_code made;
        fs::create_directories(folder, made);
        if (made) throw UsageError("cannot create the output folder " + folder.string() + ": " + made.message());
    }
    // Options that would do nothing are said, not silently ignored.
    std::string ext = out_is_folder ? "." + a.format : out.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (a.format_set && !out_is_folder) {
        std::cerr << "limn: warning: --format applies to folder outputs; " << out.string()
                  << " is written in the format its extension names\n";
    }
    if (a.quality && ext != ".jpg" && ext != ".jpeg" && ext != ".webp") {
        std::cerr << "limn: warning: --quality applies to JPEG and WebP outputs only\n";
    }
    return jobs;
}

class ProgressBar {
public:
    explicit ProgressBar(bool on) : on_(on && isatty(STDERR_FILENO)) {}
    void show(const std::string& label, int done, int total) {
        if (!on_ || total <= 0) return;
        const int width = 30, filled = width * done / total;
        std::fprintf(stderr, "\r%-28.28s [%s%s] %d/%d", label.c_str(), std::string(filled, '#').c_str(),
                     std::string(width - filled, ' ').c_str(), done, total);
        std::fflush(stderr);
        dirty_ = true;
    }
    void clear() {
        if (on_ && dirty_) std::fprintf(stderr, "\r%70s\r", "");
        dirty_ = false;
    }

private:
    bool on_;
    bool dirty_ = false;
};

// The built-in cartoon model, found beside the tool wherever it is: <prefix>/models/ for the
// build tree (build/examples/limn) and the Python package (limn/bin/limn), or
// <prefix>/share/limn/models/ for an installed SDK.
std::string default_cartoon_model(const char* argv0) {
    if (const char* env = std::getenv("LIMN_CARTOON_MODEL")) return env;
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) exe = fs::absolute(argv0, ec);
    const fs::path prefix = exe.parent_path().parent_path();
    const fs::path shared = prefix / "share" / "limn" / "models" / "classical-cartoon.pt";
    if (fs::is_regular_file(shared, ec)) return shared.string();
    return (prefix / "models" / "classical-cartoon.pt").string();
}

// The model cache of `limn models` (limn_models.registry): $LIMN_HOME, else $XDG_CACHE_HOME/limn,
// else ~/.cache/limn.
fs::path cache_dir() {
    if (const char* home = std::getenv("LIMN_HOME"); home && *home) return fs::absolute(home);
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    if (xdg && *xdg == '/') return fs::path(xdg) / "limn";
    const char* user = std::getenv("HOME");
    return fs::path(user && *user ? user : "/") / ".cache" / "limn";
}

// A registry name: lowercase letters, digits, '-' and '_' (no folder, no extension).
bool looks_like_name(const std::string& s) {
    if (s.empty() || s.size() > 64 || !(std::islower(static_cast<unsigned char>(s[0])) || std::isdigit(static_cast<unsigned char>(s[0])))) return false;
    return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::islower(c) || std::isdigit(c) || c == '-' || c == '_'; });
}

// A model argument as a file: an existing path as it is, a registry name as its fetched file in
// the cache. A name not fetched yet fails (limn::Error, LIMN_ERR_IO) with the command that fetches it.
std::string model_file(const std::string& arg) {
    std::error_code ec;
    if (arg.empty() || fs::exists(arg, ec) || !looks_like_name(arg)) return arg;
    const fs::path path = cache_dir() / "models" / (arg + ".pt");
    if (fs::is_regular_file(path, ec)) return path.string();
    throw limn::Error(LIMN_ERR_IO, "no model file '" + arg + "', and no fetched model of that name in " +
                                       (cache_dir() / "models").string() + ": run `limn models fetch " + arg +
                                       "` (`limn models list` shows the names limn knows)");
}

// The files a model argument stands for, to be tried in order: an existing path as it is; for a
// registry name on the CPU in precision auto (or a package's own), the packages `limn models
// fetch` compiled for this CPU (models/NAME.cpu-P.pt2, fastest first), then its TorchScript file.
std::vector<std::string> model_files(const std::string& arg, bool on_cpu, limn_precision precision) {
    const std::string file = model_file(arg);
    if (file == arg || !on_cpu) return {file};
    std::vector<std::string> out;
    std::error_code ec;
    for (const limn_precision p : {LIMN_PRECISION_BF16, LIMN_PRECISION_FP32}) {
        if (precision != LIMN_PRECISION_AUTO && precision != p) continue;
        const fs::path package = cache_dir() / "models" / (arg + ".cpu-" + limn::precision_name(p) + ".pt2");
        if (fs::is_regular_file(package, ec)) out.push_back(package.string());
    }
    out.push_back(file);
    return out;
}

// `limn models ...`: the model registry lives in the Python model zoo (limn_models.fetch), which
// downloads and converts; run it with the same arguments. $LIMN_PYTHON names the interpreter.
int models_command(int argc, char** argv) {
    const char* python = std::getenv("LIMN_PYTHON");
    if (!python || !*python) python = "python3";
    std::vector<char*> args{const_cast<char*>(python), const_cast<char*>("-m"),
                            const_cast<char*>("limn_models.fetch")};
    for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
    args.push_back(nullptr);
    std::cout.flush();
    ::execvp(python, args.data());
    std::cerr << "limn: `limn models` runs " << python << " -m limn_models.fetch, which could not start: "
              << std::strerror(errno) << " (install the Python package: pip install --no-build-isolation .)\n";
    return kNoModel;
}

std::vector<limn_face> read_landmarks(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw UsageError("cannot read the landmarks file " + path + ": " + std::strerror(errno));
    try {
        return limn_cli::parse_landmarks(in, path);
    } catch (const limn_cli::LandmarksError& e) {
        throw UsageError(e.what());
    }
}

limn::DetectFacesOptions detect_options(const Args& a) {
    limn::DetectFacesOptions o;
    if (a.threshold) o.score_threshold(*a.threshold);
    return o;
}

std::string mib(uint64_t bytes) {
    char b[32];
    std::snprintf(b, sizeof b, "%.0f MiB", static_cast<double>(bytes) / (1 << 20));
    return b;
}

// Loads a model of `kind` on the device and precision asked for (Error on failure).
std::unique_ptr<limn::Model> load_model(const Args& a, const std::string& path, limn_model_kind kind) {
    const std::string device = limn::resolve_device(a.device);
    if (a.memory_limit > 0) limn::set_memory_limit(device, a.memory_limit);
    limn::ModelOptions options = limn::ModelOptions().device(device).precision(a.precision).expected_kind(kind);
    if (a.max_pixels) options.max_pixels(*a.max_pixels);
    const std::vector<std::string> files = model_files(path, device == "cpu", a.precision);
    for (size_t i = 0;; ++i) {
        try {
            return std::make_unique<limn::Model>(files[i], options);
        } catch (const limn::Error& e) {
            // A name's package this CPU (or this torch) cannot run: its TorchScript file next.
            const bool next = e.status() == LIMN_ERR_UNSUPPORTED || e.status() == LIMN_ERR_INVALID_MODEL;
            if (!next || i + 1 == files.size()) throw;
        }
    }
}

int print_plan(const Args& a, const std::vector<Job>& jobs, const std::string& model_path);

int run_images(const Args& a, const char* argv0) {
    const bool faces_mode = a.command == "restore-faces";
    if (faces_mode && a.landmarks.empty() == a.detector.empty()) {
        throw UsageError("restore-faces needs either --detector FILE (a face_detect model) or --landmarks FILE");
    }
    if (faces_mode && !a.landmarks.empty() && a.inputs.size() != 1) {
        throw UsageError("restore-faces --landmarks takes one input photo");
    }
    const bool compound = !faces_mode && !a.head_model.empty();
    if (compound && a.landmarks.empty() == a.detector.empty()) {
        throw UsageError("cartoonize --head-model needs either --detector MODEL (a face_detect model) or --landmarks FILE");
    }
    if (compound && !a.landmarks.empty() && a.inputs.size() != 1) {
        throw UsageError("cartoonize --landmarks takes one input photo");
    }
    if (!faces_mode && !compound && (!a.detector.empty() || !a.landmarks.empty())) {
        throw UsageError("cartoonize uses --detector and --landmarks only with --head-model");
    }
    const std::vector<limn_face> faces = !a.landmarks.empty() ? read_landmarks(a.landmarks) : std::vector<limn_face>();
    const std::vector<Job> jobs = plan_jobs(a);
    const std::string model_path = !a.model.empty() ? a.model : faces_mode ? "" : default_cartoon_model(argv0);
    if (model_path.empty()) throw UsageError("restore-faces needs --model FILE (a face_restore model)");
    if (a.dry_run) return print_plan(a, jobs, model_path);

    std::unique_ptr<limn::Model> model, detector, head;
    try {
        model = load_model(a, model_path, faces_mode ? LIMN_MODEL_KIND_FACE_RESTORE : LIMN_MODEL_KIND_CARTOON);
        if (!a.detector.empty()) detector = load_model(a, a.detector, LIMN_MODEL_KIND_FACE_DETECT);
        if (compound) {
            head = load_model(a, a.head_model, LIMN_MODEL_KIND_CARTOON);
            if (std::string(head->info().role) != "head") {
                throw limn::Error(LIMN_ERR_WRONG_MODEL_KIND, "--head-model '" + a.head_model +
                                                                 "' is not a head model (role 'head'; "
                                                                 "convert_dctnet writes cartoon_h.pb so)");
            }
        }
    } catch (const limn::Error& e) {
        std::cerr << "limn: " << e.what() << "\n";
        return kNoModel;
    }
    const limn_model_info info = model->info();
    const std::string precision = limn::precision_name(info.precision);
    if (!a.quiet) {
        std::cerr << "limn: model '" << info.name << "' (" << info.format << ") on " << info.device << " in "
                  << precision << "\n";
        if (info.precision_note[0]) std::cerr << "limn: " << info.precision_note << "\n";
    }

    limn::reset_peak_memory(info.device);
    // -j N: N photos in flight on the one model (it is thread-safe), each loaded, computed and
    // saved by its own worker, so reading and writing files overlap the network's work. The bar
    // shows one photo's progress only when one runs at a time.
    const size_t workers = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(a.jobs), jobs.size()));
    ProgressBar bar(!a.quiet && workers == 1);
    std::mutex out_mutex;  // stderr lines and the counters below
    int failed = 0, done = 0;
    double seconds = 0.0;
    const auto process = [&](const Job& j) {
        const std::string label = j.in.filename().string();
        try {
            const auto t0 = std::chrono::steady_clock::now();
            limn::Image img;
            std::vector<uint8_t> icc;  // the photo's colour profile goes with it to the output
            if (j.in == "-") {
                const std::string bytes((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
                img = limn::load_image_from_memory(bytes.data(), bytes.size(), static_cast<limn_pixel_format>(0),
                                                   a.max_pixels);
                icc = limn::read_icc_profile_from_memory(bytes.data(), bytes.size());
            } else {
                img = limn::load_image(j.in.string(), static_cast<limn_pixel_format>(0), a.max_pixels);
                icc = limn::read_icc_profile(j.in.string());
            }
            limn_pipeline_stats st{};
            auto progress = [&](int32_t d, int32_t t) {
                if (workers == 1) bar.show(label, d, t);
                return true;
            };
            if (faces_mode) {
                limn::RestoreFacesOptions o;
                o.progress(progress);
                if (a.strength) o.strength(*a.strength);
                if (a.min_face_size) o.min_face_size(*a.min_face_size);
                if (detector) o.detector(*detector, detect_options(a));
                st = model->restore_faces(img.view(), img.view(), faces, o);
            } else {
                limn::CartoonizeOptions o;
                o.progress(progress);
                if (a.strength) o.strength(*a.strength);
                if (a.max_side) o.max_side(*a.max_side);
                if (a.tile) o.tile_size(*a.tile);
                if (head) {
                    o.head_model(*head).faces(faces);
                    if (a.working_size) o.working_size(*a.working_size);
                    if (detector) o.detector(*detector, detect_options(a));
                }
                st = model->cartoonize(img.view(), img.view(), o);
            }
            std::string ext = j.out.extension().string();
            std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
            if ((ext == ".jpg" || ext == ".jpeg") && img.format() == LIMN_PIXEL_RGBA8) {
                const std::lock_guard<std::mutex> lock(out_mutex);
                bar.clear();
                std::cerr << "limn: warning: " << j.out.string() << ": JPEG has no alpha; the transparency of "
                          << j.in.string() << " is dropped (PNG keeps it)\n";
            }
            if (!icc.empty() && (ext == ".bmp" || ext == ".tga" || (j.out == "-" && (a.format == "bmp" || a.format == "tga")))) {
                const std::lock_guard<std::mutex> lock(out_mutex);
                bar.clear();
                std::cerr << "limn: warning: " << j.out.string() << ": BMP and TGA cannot hold the ICC colour profile of "
                          << j.in.string() << "; it is dropped (PNG, JPEG and WebP keep it)\n";
            }
            if (j.out == "-") {
                const std::string f = a.format == "jpg" || a.format == "jpeg" ? "jpeg" : a.format;
                const limn_file_format ff = f == "png"    ? LIMN_FILE_FORMAT_PNG
                                            : f == "jpeg" ? LIMN_FILE_FORMAT_JPEG
                                            : f == "bmp"  ? LIMN_FILE_FORMAT_BMP
                                            : f == "webp" ? LIMN_FILE_FORMAT_WEBP
                                                          : LIMN_FILE_FORMAT_TGA;
                const std::vector<uint8_t> encoded = limn::encode_image(img.view(), ff, a.quality, icc);
                std::cout.write(reinterpret_cast<const char*>(encoded.data()), static_cast<std::streamsize>(encoded.size()));
                std::cout.flush();
            } else {
                limn::save_image(j.out.string(), img.view(), a.quality, LIMN_FILE_FORMAT_AUTO, icc);
            }
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const std::lock_guard<std::mutex> lock(out_mutex);
            seconds += s;
            ++done;
            bar.clear();
            if (!a.quiet) {
                std::string what = std::to_string(st.tiles) + (st.tiles == 1 ? " tile" : " tiles");
                if (head) {
                    what += ", " + std::to_string(st.faces) + (st.faces == 1 ? " face" : " faces") + " stylized";
                    if (st.faces_skipped > 0) what += ", " + std::to_string(st.faces_skipped) + " outside";
                }
                if (faces_mode) {
                    what = std::to_string(st.faces) + (st.faces == 1 ? " face" : " faces") + " restored";
                    if (st.faces_skipped > 0) {
                        what += ", " + std::to_string(st.faces_skipped) + " skipped (under --min-face-size or outside)";
                    }
                }
                std::cerr << "limn: " << j.in.string() << " -> " << j.out.string() << " (" << img.width() << "x"
                          << img.height() << ", " << what << ", " << std::fixed << std::setprecision(2) << s << " s)\n";
            }
        } catch (const limn::Error& e) {
            const std::lock_guard<std::mutex> lock(out_mutex);
            bar.clear();
            std::cerr << "limn: " << j.in.string() << ": " << e.what() << "\n";
            ++failed;
        }
    };
    if (workers == 1) {
        for (const Job& j : jobs) process(j);
    } else {
        std::atomic<size_t> next{0};
        std::vector<std::thread> pool;
        for (size_t w = 0; w < workers; ++w) {
            pool.emplace_back([&] {
                for (size_t i; (i = next++) < jobs.size();) process(jobs[i]);
            });
        }
        for (auto& t : pool) t.join();
    }
    if (!a.quiet) {
        const limn_memory_stats m = limn::memory_stats(info.device);
        if (!g_skipped_files.empty()) {
            std::cerr << "limn: " << g_skipped_files.size() << " file(s) skipped, not images limn reads:";
            for (size_t k = 0; k < g_skipped_files.size() && k < 5; ++k) std::cerr << " " << g_skipped_files[k].string();
            std::cerr << (g_skipped_files.size() > 5 ? " ...\n" : "\n");
        }
        if (g_existing_outputs > 0) {
            std::cerr << "limn: " << g_existing_outputs << " input(s) skipped, their output exists (--skip-existing)\n";
        }
        std::cerr << "limn: " << done << " of " << jobs.size() << " images done";
        if (done > 0) std::cerr << ", " << std::fixed << std::setprecision(2) << seconds / done << " s per image";
        std::cerr << ", peak memory " << mib(m.peak_allocated) << " on " << info.device;
        // On the CPU, tensors are part of the process's resident set, which holds LibTorch too.
        if (info.device == std::string("cpu")) std::cerr << " (process peak " << mib(m.peak_reserved) << ")";
        std::cerr << "\n";
    }
    return failed ? kFailed : kOk;
}

// `s` as a JSON string (UTF-8 passed through, control characters escaped).
std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

// --dry-run: the plan, as "IN -> OUT" lines, or with --json one JSON object: the model files
// (registry names resolved), the device, precision and every option given, the (input, output)
// pairs, and what was left out. `limn cartoonize ... --ray` runs this plan on Ray Data workers.
int print_plan(const Args& a, const std::vector<Job>& jobs, const std::string& model_path) {
    std::string model, detector, head;
    try {
        model = model_file(model_path);
        if (!a.detector.empty()) detector = model_file(a.detector);
        if (!a.head_model.empty()) head = model_file(a.head_model);
    } catch (const limn::Error& e) {
        std::cerr << "limn: " << e.what() << "\n";
        return kNoModel;
    }
    if (!a.json) {
        for (const Job& j : jobs) std::cout << j.in.string() << " -> " << j.out.string() << "\n";
        if (!a.quiet && g_existing_outputs > 0) {
            std::cerr << "limn: " << g_existing_outputs << " input(s) skipped, their output exists (--skip-existing)\n";
        }
        return kOk;
    }
    const auto text = [](const std::string& s) { return s.empty() ? std::string("null") : json_string(s); };
    std::ostringstream o;
    o << std::setprecision(9);
    o << "{\"command\": " << json_string(a.command) << ", \"model\": " << text(model) << ", \"detector\": "
      << text(detector) << ", \"head_model\": " << text(head) << ", \"landmarks\": " << text(a.landmarks)
      << ", \"device\": " << json_string(a.device) << ", \"precision\": \"" << limn::precision_name(a.precision)
      << "\", \"memory_limit\": " << a.memory_limit << ", \"options\": {";
    const char* sep = "";
    const auto option = [&](const char* name, const auto& value) {
        if (!value) return;
        o << sep << "\"" << name << "\": " << *value;
        sep = ", ";
    };
    option("strength", a.strength);
    option("max_side", a.max_side);
    option("tile", a.tile);
    option("working_size", a.working_size);
    option("threshold", a.threshold);
    option("min_face_size", a.min_face_size);
    option("quality", a.quality);
    option("max_pixels", a.max_pixels);
    o << "}, \"jobs\": [";
    for (size_t k = 0; k < jobs.size(); ++k) {
        o << (k ? ", " : "") << "{\"in\": " << json_string(jobs[k].in.string()) << ", \"out\": "
          << json_string(jobs[k].out.string()) << "}";
    }
    o << "], \"skipped_existing\": " << g_existing_outputs << ", \"skipped_files\": [";
    for (size_t k = 0; k < g_skipped_files.size(); ++k) o << (k ? ", " : "") << json_string(g_skipped_files[k].string());
    o << "]}\n";
    std::cout << o.str();
    return kOk;
}

int info_command(const Args& a) {
    if (a.inputs.size() != 1) throw UsageError("info takes one model file");
    try {
        const std::string path = model_file(a.inputs[0]);
        // On the CPU where it can run there; a package compiled for CUDA on the device it was built for.
        std::unique_ptr<limn::Model> loaded;
        try {
            loaded = std::make_unique<limn::Model>(path, limn::ModelOptions().device("cpu").warmup(false));
        } catch (const limn::Error& e) {
            if (e.status() != LIMN_ERR_UNSUPPORTED) throw;
            loaded = std::make_unique<limn::Model>(path, limn::ModelOptions().device("auto").warmup(false));
        }
        const limn_model_info i = loaded->info();
        if (a.json) {
            std::cout << "{\"file\": " << json_string(path) << ", \"name\": " << json_string(i.name)
                      << ", \"kind\": \"" << limn::model_kind_name(i.kind) << "\", \"format\": " << json_string(i.format)
                      << ", \"device\": " << json_string(i.device) << ", \"precision\": \""
                      << limn::precision_name(i.precision) << "\", \"metadata_version\": " << i.format_version
                      << ", \"size_multiple\": " << i.size_multiple << ", \"fixed_width\": " << i.fixed_width
                      << ", \"fixed_height\": " << i.fixed_height << ", \"min_width\": " << i.min_width
                      << ", \"min_height\": " << i.min_height << ", \"tile_margin\": " << i.tile_margin
                      << ", \"face_template\": ";
            if (i.has_face_template) {
                std::cout << "[";
                for (int k = 0; k < 10; ++k) std::cout << (k ? ", " : "") << i.face_template[k];
                std::cout << "]";
            } else {
                std::cout << "null";
            }
            std::cout << ", \"role\": " << json_string(i.role) << ", \"crop_size\": " << i.crop_size
                      << ", \"source\": " << json_string(i.source) << ", \"license\": " << json_string(i.license)
                      << "}\n";
            return kOk;
        }
        const std::string format = std::string(i.format) == "pt2"
                                       ? std::string("compiled package (pt2) for ") +
                                             (std::string(i.device) == "cpu" ? "cpu, " : "cuda, ") +
                                             limn::precision_name(i.precision)
                                       : std::string("TorchScript (any device and precision)");
        std::cout << "file:          " << path << "\n"
                  << "name:          " << i.name << "\n"
                  << "kind:          " << limn::model_kind_name(i.kind) << "\n"
                  << "file format:   " << format << "\n"
                  << "metadata:      version " << i.format_version << "\n";
        if (i.fixed_width > 0) std::cout << "size:          " << i.fixed_width << "x" << i.fixed_height << " (fixed)\n";
        else std::cout << "size:          any multiple of " << i.size_multiple << "\n";
        if (i.min_width > 1 || i.min_height > 1) {
            std::cout << "smallest input: " << i.min_width << "x" << i.min_height << " (smaller pictures are padded)\n";
        }
        std::cout << "tile margin:   " << i.tile_margin << "\n";
        if (std::string(i.role) == "head") {
            std::cout << "role:          head network: aligned " << i.crop_size << "x" << i.crop_size
                      << " face crops (the face on the template below)\n";
        }
        if (i.has_face_template) {
            std::cout << "face template:";
            for (int k = 0; k < 10; k += 2) std::cout << " (" << i.face_template[k] << ", " << i.face_template[k + 1] << ")";
            std::cout << "\n";
        }
        std::cout << "source:        " << i.source << "\n"
                  << "licence:       " << i.license << "\n";
    } catch (const limn::Error& e) {
        std::cerr << "limn: " << e.what() << "\n";
        return kNoModel;
    }
    return kOk;
}

// Prints the faces found in one photo as a landmarks file (to -o FILE, or stdout).
int detect_command(const Args& a) {
    if (a.inputs.size() != 1) throw UsageError("detect-faces takes one photo");
    if (a.detector.empty()) throw UsageError("detect-faces needs --detector FILE (a face_detect model)");
    if (!a.output.empty()) {
        std::vector<fs::path> kept = read_files(a);
        kept.emplace_back(a.inputs[0]);
        check_output(a, a.output, kept);
    }
    std::unique_ptr<limn::Model> detector;
    try {
        detector = load_model(a, a.detector, LIMN_MODEL_KIND_FACE_DETECT);
    } catch (const limn::Error& e) {
        std::cerr << "limn: " << e.what() << "\n";
        return kNoModel;
    }
    std::vector<limn_face> faces;
    limn::Image img;
    try {
        img = limn::load_image(a.inputs[0], static_cast<limn_pixel_format>(0), a.max_pixels);
        faces = detector->detect_faces(img.view(), detect_options(a));
    } catch (const limn::Error& e) {
        std::cerr << "limn: " << a.inputs[0] << ": " << e.what() << "\n";
        return kFailed;
    }
    std::ostringstream text;
    text << std::fixed << std::setprecision(2);
    text << "# " << a.inputs[0] << " (" << img.width() << "x" << img.height() << "): " << faces.size()
         << (faces.size() == 1 ? " face" : " faces") << " with score >= " << detect_options(a).get()->score_threshold
         << "\n";
    for (size_t i = 0; i < faces.size(); ++i) {
        const limn_face& f = faces[i];
        text << "# face " << i + 1 << ": score " << std::setprecision(4) << f.score << std::setprecision(2) << ", box "
             << f.box[0] << " " << f.box[1] << " " << f.box[2] << " " << f.box[3] << "\n";
        for (int k = 0; k < 10; ++k) text << (k ? " " : "") << f.landmarks[k];
        text << "\n";
    }
    if (a.output.empty()) {
        std::cout << text.str();
        return kOk;
    }
    // Written to a private temporary file beside the target, then renamed: never a half-written
    // file, and never another file of that name.
    const fs::path target(a.output);
    std::string tmp = ((target.has_parent_path() ? target.parent_path() : fs::path(".")) /
                       (".limn-" + target.filename().string() + ".XXXXXX")).string();
    const int fd = ::mkstemp(tmp.data());
    const std::string body = text.str();
    bool ok = fd >= 0;
    if (ok) {
        size_t done = 0;
        while (ok && done < body.size()) {
            const ssize_t n = ::write(fd, body.data() + done, body.size() - done);
            ok = n > 0;
            if (ok) done += static_cast<size_t>(n);
        }
        ok = ::fchmod(fd, 0644) == 0 && ::close(fd) == 0 && ok;
        ok = ok && std::rename(tmp.c_str(), a.output.c_str()) == 0;
    }
    if (!ok) {
        const int err = errno;
        if (fd >= 0) std::remove(tmp.c_str());
        std::cerr << "limn: cannot write " << a.output << ": " << std::strerror(err) << "\n";
        return kFailed;
    }
    if (!a.quiet) std::cerr << "limn: " << faces.size() << (faces.size() == 1 ? " face" : " faces") << " -> " << a.output << "\n";
    return kOk;
}

int devices_command(const Args& a) {
    if (a.json) {
        std::cout << "[";
        bool first = true;
        for (const limn_device_info& d : limn::devices()) {
            std::cout << (first ? "" : ", ") << "{\"id\": " << json_string(d.id) << ", \"name\": " << json_string(d.name)
                      << ", \"type\": \"" << (d.type == LIMN_DEVICE_CUDA ? "cuda" : "cpu")
                      << "\", \"total_memory\": " << d.total_memory << ", \"free_memory\": " << d.free_memory
                      << ", \"compute_capability\": " << d.compute_capability
                      << ", \"native_precisions\": " << json_string(d.native_precisions)
                      << ", \"auto_precision\": " << json_string(d.auto_precision) << "}";
            first = false;
        }
        std::cout << "]\n";
        return kOk;
    }
    for (const limn_device_info& d : limn::devices()) {
        std::cout << d.id << "  " << d.name << "  " << mib(d.total_memory) << " total, " << mib(d.free_memory) << " free";
        if (d.type == LIMN_DEVICE_CUDA) std::cout << ", compute " << d.compute_capability / 10 << "." << d.compute_capability % 10;
        std::cout << "\n    native precisions: " << d.native_precisions << "; auto picks " << d.auto_precision << "\n";
    }
    return kOk;
}

// What the command wrote to stdout (JSON, plans, landmarks, `-o -` images) reached it, or the
// command fails: a full disk or a closed pipe is an error, not exit 0 with the output cut short.
int stdout_checked(int status) {
    std::cout.flush();
    if (!std::cout) {
        std::cerr << "limn: cannot write to standard output\n";
        return status == kOk ? kFailed : status;
    }
    return status;
}

int run_command(int argc, char** argv) {
    if (argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
        std::cout << kUsageText;
        return kOk;
    }
    if (argc >= 2 && std::strcmp(argv[1], "--version") == 0) {
        std::cout << "limn " << limn::version() << "\n";
        return kOk;
    }
    if (argc >= 2 && std::strcmp(argv[1], "models") == 0) return models_command(argc, argv);
    try {
        const Args a = parse(argc, argv);
        if (a.command == "cartoonize" || a.command == "restore-faces") return run_images(a, argv[0]);
        if (a.command == "info") return info_command(a);
        if (a.command == "detect-faces") return detect_command(a);
        if (a.command == "devices") return devices_command(a);
        throw UsageError("unknown command '" + a.command + "'");
    } catch (const HelpRequest& h) {
        print_help(h.command);
        return kOk;
    } catch (const UsageError& e) {
        std::cerr << "limn: " << e.what() << "\n(`limn --help` shows the usage)\n";
        return kUsage;
    } catch (const limn::Error& e) {
        std::cerr << "limn: " << e.what() << "\n";
        return kFailed;
    } catch (const std::exception& e) {
        std::cerr << "limn: " << e.what() << "\n";
        return kFailed;
    }
}

}  // namespace

int main(int argc, char** argv) { return stdout_checked(run_command(argc, argv)); }
