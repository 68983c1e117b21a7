// Models by name: the cache `limn models fetch` fills ($LIMN_HOME, else $XDG_CACHE_HOME/limn, else
// ~/.cache/limn), and the files a name stands for. The one rule; the CLI, C, C++ and Python use
// it through limn_model_path / limn_model_load (limn_models.registry keeps a copy, proved equal by
// a test, because it must work without the library). No LibTorch here.
#pragma once

#include <string>
#include <vector>

#include "limn/limn.h"

namespace limn::core {

// The model cache folder.
std::string model_cache_dir();

// A model name: lowercase letters, digits, '-' and '_' (no folder, no extension), at most 64.
bool is_model_name(const std::string& text);

// `source` itself when it exists or is not a model name; a fetched name's TorchScript file.
// Failure(LIMN_ERR_IO) with the fetch command for a name not fetched.
std::string model_path(const std::string& source);

// The files to try for `source`, in order: `source` as model_path gives it; for a fetched name on
// the CPU in precision AUTO (or a package's own), the packages compiled for this CPU first.
std::vector<std::string> model_files(const std::string& source, bool on_cpu, limn_precision precision);

}  // namespace limn::core
