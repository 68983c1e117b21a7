#include "model_names.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "error.h"
#include "names.h"

namespace limn::core {
namespace {

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

bool is_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string absolute(const std::string& path) {
    if (!path.empty() && path[0] == '/') return path;
    std::string cwd(4096, '\0');
    if (!::getcwd(cwd.data(), cwd.size())) return path;
    cwd.resize(std::char_traits<char>::length(cwd.c_str()));
    return cwd + (cwd == "/" ? "" : "/") + path;
}

std::string home() {
    if (const char* h = std::getenv("HOME"); h && *h) return h;
    const passwd* pw = ::getpwuid(::getuid());
    return pw && pw->pw_dir ? pw->pw_dir : "/";
}

}  // namespace

std::string model_cache_dir() {
    if (const char* dir = std::getenv("LIMN_HOME"); dir && *dir) return absolute(dir);
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg == '/') return std::string(xdg) + "/limn";
    return home() + "/.cache/limn";
}

bool is_model_name(const std::string& text) {
    if (text.empty() || text.size() > 64) return false;
    const auto lower_or_digit = [](unsigned char c) { return std::islower(c) || std::isdigit(c); };
    if (!lower_or_digit(static_cast<unsigned char>(text[0]))) return false;
    return std::all_of(text.begin(), text.end(),
                       [&](unsigned char c) { return lower_or_digit(c) || c == '-' || c == '_'; });
}

std::string model_path(const std::string& source) {
    if (exists(source) || !is_model_name(source)) return source;
    const std::string models = model_cache_dir() + "/models";
    const std::string path = models + "/" + source + ".pt";
    if (is_file(path)) return path;
    fail(LIMN_ERR_IO, "no model file '" + source + "', and no fetched model of that name in " + models +
                          ": run `limn models fetch " + source + "` (`limn models list` shows the names limn knows)");
}

std::vector<std::string> model_files(const std::string& source, bool on_cpu, limn_precision precision) {
    const std::string file = model_path(source);
    if (file == source || !on_cpu) return {file};
    std::vector<std::string> out;
    for (const limn_precision p : {LIMN_PRECISION_BF16, LIMN_PRECISION_FP32}) {
        if (precision != LIMN_PRECISION_AUTO && precision != p) continue;
        const std::string package =
            model_cache_dir() + "/models/" + source + ".cpu-" + name_of(LIMN_NAMES_PRECISION, p) + ".pt2";
        if (is_file(package)) out.push_back(package);
    }
    out.push_back(file);
    return out;
}

}  // namespace limn::core
