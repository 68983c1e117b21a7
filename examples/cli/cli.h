// What the commands of the limn command-line tool share: exit codes, the parsed command line, job
// planning (inputs -> outputs), model arguments and output helpers. Each command is a file of its
// own (images.cpp, detect_faces.cpp, info.cpp, devices.cpp, models.cpp); main.cpp dispatches.
// Built only on the public C++ wrapper (limn.hpp), like any application, plus the library's
// torch-free atomic-write helper (src/file_io.cpp).
#pragma once

#include <limn/limn.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace limn_cli {

namespace fs = std::filesystem;

// Exit codes (also in the usage text).
constexpr int kOk = 0;
constexpr int kFailed = 1;    // some image could not be processed, or an output not written
constexpr int kUsage = 2;     // bad command line
constexpr int kNoModel = 3;   // the model or device could not be used

// ---- the command line (args.cpp) ----------------------------------------------------------------

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

// `limn COMMAND --help`: that command's usage lines and options, on stdout, exit 0.
struct HelpRequest {
    std::string command;
};

// The whole usage text (`limn --help`), or one command's.
std::string usage_text(const std::string& command = "");
// Parses argv (UsageError, HelpRequest); checks that every option given applies to the command.
Args parse(int argc, char** argv);

// ---- job planning (plan.cpp) --------------------------------------------------------------------

struct Job {
    fs::path in, out;
};

struct Plan {
    std::vector<Job> jobs;
    std::vector<fs::path> skipped_files;    // in folder inputs: not images limn reads
    std::vector<fs::path> dangling_links;   // in folder inputs: symbolic links to nothing
    std::vector<fs::path> skipped_folders;  // subfolders of folder inputs, without -r
    size_t existing_outputs = 0;            // inputs --skip-existing left alone
};

// Inputs (files, folders of images) -> (input, output) pairs, with every refusal that needs no
// model (UsageError): outputs over inputs, read-only or colliding outputs, unwritable formats.
// Creates the output folders unless a.dry_run.
Plan plan_jobs(const Args& a);
// Refuses to write `out` over any of `kept` (inputs, model and landmark files), or over a
// read-only file unless --overwrite: limn never destroys what it reads.
void check_output(const Args& a, const fs::path& out, const std::vector<fs::path>& kept);
// The files a command reads besides its inputs: models and the landmarks file.
std::vector<fs::path> read_files(const Args& a);
// What the plan left out (skipped files, links, folders, existing outputs), on stderr.
void say_skipped(const Plan& plan);

// ---- model arguments (model_args.cpp) -----------------------------------------------------------

// The built-in cartoon model installed beside the tool, or $LIMN_CARTOON_MODEL when set.
std::string default_cartoon_model(const char* argv0);
// A model argument as a file (a fetched name as its file, limn_model_path); limn::Error if not fetched.
std::string model_file(const std::string& arg);
// Loads a model of `kind` on the device and precision asked for (limn::Error on failure).
std::unique_ptr<limn::Model> load_model(const Args& a, const std::string& arg, limn_model_kind kind);
limn::DetectFacesOptions detect_options(const Args& a);

// ---- output (output.cpp) ------------------------------------------------------------------------

// `s` as a JSON string (UTF-8 passed through, control characters escaped).
std::string json_string(const std::string& s);
std::string mib(uint64_t bytes);
// Writes `bytes` to `path` whole or not at all (a temporary file renamed into place); a symbolic
// link is written through. limn::Error(LIMN_ERR_IO) naming the path on failure.
void write_file(const std::string& path, const std::string& bytes);

// ---- the commands -------------------------------------------------------------------------------

int images_command(const Args& a, const char* argv0);  // cartoonize, restore-faces
int detect_faces_command(const Args& a);
int info_command(const Args& a);
int devices_command(const Args& a);
int models_command(int argc, char** argv);             // runs python3 -m limn_models.fetch

}  // namespace limn_cli
