// Model arguments: a file, or a model name fetched into the cache (the library's rule,
// limn_model_path); and loading them.
#include "cli.h"

#include <cstdlib>

namespace limn_cli {

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

std::string model_file(const std::string& arg) { return arg.empty() ? arg : limn::model_path(arg); }

// The library resolves names (the package compiled for this CPU first, then the TorchScript file).
std::unique_ptr<limn::Model> load_model(const Args& a, const std::string& arg, limn_model_kind kind) {
    const std::string device = limn::resolve_device(a.device);
    if (a.memory_limit > 0) limn::set_memory_limit(device, a.memory_limit);
    limn::ModelOptions options = limn::ModelOptions().device(device).precision(a.precision).expected_kind(kind);
    if (a.max_pixels) options.max_pixels(*a.max_pixels);
    return std::make_unique<limn::Model>(arg, options);
}

limn::DetectFacesOptions detect_options(const Args& a) {
    limn::DetectFacesOptions o;
    if (a.threshold) o.score_threshold(*a.threshold);
    return o;
}

}  // namespace limn_cli
