// Model arguments: a file, or a registered name fetched into the model cache; and loading them.
#include "cli.h"

#include <algorithm>
#include <cstdlib>

namespace limn_cli {
namespace {

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
    const auto name_char = [](unsigned char c) { return std::islower(c) || std::isdigit(c) || c == '-' || c == '_'; };
    if (s.empty() || s.size() > 64 || !(std::islower(static_cast<unsigned char>(s[0])) || std::isdigit(static_cast<unsigned char>(s[0])))) return false;
    return std::all_of(s.begin(), s.end(), name_char);
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

}  // namespace

// The built-in cartoon model, found beside the tool wherever it is: <prefix>/models/ for the
// build tree (build/examples/limn) and the Python package (limn/bin/limn), or
// <prefix>/share/limn/models/ for an installed SDK. An empty $LIMN_CARTOON_MODEL is unset.
std::string default_cartoon_model(const char* argv0) {
    if (const char* env = std::getenv("LIMN_CARTOON_MODEL"); env && *env) return env;
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) exe = fs::absolute(argv0, ec);
    const fs::path prefix = exe.parent_path().parent_path();
    const fs::path shared = prefix / "share" / "limn" / "models" / "classical-cartoon.pt";
    if (fs::is_regular_file(shared, ec)) return shared.string();
    return (prefix / "models" / "classical-cartoon.pt").string();
}

std::string model_file(const std::string& arg) {
    std::error_code ec;
    if (arg.empty() || fs::exists(arg, ec) || !looks_like_name(arg)) return arg;
    const fs::path path = cache_dir() / "models" / (arg + ".pt");
    if (fs::is_regular_file(path, ec)) return path.string();
    throw limn::Error(LIMN_ERR_IO, "no model file '" + arg + "', and no fetched model of that name in " +
                                       (cache_dir() / "models").string() + ": run `limn models fetch " + arg +
                                       "` (`limn models list` shows the names limn knows)");
}

std::unique_ptr<limn::Model> load_model(const Args& a, const std::string& arg, limn_model_kind kind) {
    const std::string device = limn::resolve_device(a.device);
    if (a.memory_limit > 0) limn::set_memory_limit(device, a.memory_limit);
    limn::ModelOptions options = limn::ModelOptions().device(device).precision(a.precision).expected_kind(kind);
    if (a.max_pixels) options.max_pixels(*a.max_pixels);
    const std::vector<std::string> files = model_files(arg, device == "cpu", a.precision);
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

limn::DetectFacesOptions detect_options(const Args& a) {
    limn::DetectFacesOptions o;
    if (a.threshold) o.score_threshold(*a.threshold);
    return o;
}

}  // namespace limn_cli
