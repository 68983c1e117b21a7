// Job planning for cartoonize and restore-faces: inputs (files, folders, stdin) -> (input, output)
// pairs, and every refusal that needs no model, before any model is loaded.
#include "cli.h"

#include <sys/stat.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <optional>

namespace limn_cli {
namespace {

std::string lower_extension(const fs::path& p) {
    std::string e = p.extension().string();
    std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
    return e;
}

bool is_image_name(const fs::path& p) {
    const std::string e = lower_extension(p);
    for (const char* x : {".jpg", ".jpeg", ".png", ".bmp", ".tga", ".webp", ".tif", ".tiff", ".gif", ".psd", ".pnm",
                          ".ppm", ".pgm", ".hdr", ".pic"})
        if (e == x) return true;
    return false;
}

// The extensions limn writes: the library's file-format names (its AUTO rule), "jpg" too.
bool is_writable_name(const fs::path& p) {
    const std::string e = lower_extension(p);
    const std::optional<int32_t> format = e.empty() ? std::nullopt : limn::name_value(LIMN_NAMES_FILE_FORMAT, e.substr(1));
    return format && *format != LIMN_FILE_FORMAT_AUTO;
}

void check_writable(const fs::path& out) {
    if (is_writable_name(out)) return;
    const std::string ext = out.extension().string();
    if (is_image_name(out)) {
        throw UsageError("output " + out.string() + ": limn reads " + ext + " files but writes only .png, .jpg, .bmp, "
                         ".tga and .webp");
    }
    throw UsageError("output " + out.string() + " needs an image extension (.png, .jpg, .bmp, .tga, .webp)");
}

bool same_file(const fs::path& a, const fs::path& b) {
    std::error_code ec;
    return fs::equivalent(a, b, ec);
}

// `-` as the input (stdin) or `-o -` (stdout): one photo, no folders.
Plan pipe_plan(const Args& a, bool pipe_in) {
    if (a.output == "-") {
        if (a.inputs.size() != 1 || fs::is_directory(a.inputs[0])) throw UsageError("-o - (stdout) takes one input photo");
        if (!a.format_set) throw UsageError("-o - (stdout) needs --format png, jpg, bmp, tga or webp");
        if (!pipe_in && !fs::exists(a.inputs[0])) throw UsageError("input " + a.inputs[0] + " does not exist");
        Plan plan;
        plan.jobs.push_back(Job{a.inputs[0], "-"});
        return plan;
    }
    check_output(a, a.output, read_files(a));
    check_writable(a.output);
    const fs::path folder = fs::path(a.output).parent_path();
    std::error_code made;
    if (!folder.empty() && !a.dry_run) fs::create_directories(folder, made);
    Plan plan;
    plan.jobs.push_back(Job{"-", a.output});
    return plan;
}

// The images in folder input `in` (its subfolders too with -r), sorted; the output folder, other
// files, dangling links and (without -r) subfolders are left out and noted in the plan.
std::vector<fs::path> walk_folder(const Args& a, const fs::path& in, Plan& plan) {
    std::vector<fs::path> found;
    std::error_code ec;
    const auto consider = [&](const fs::directory_entry& e, auto* walker) {
        std::error_code e1;
        if (e.is_directory(e1)) {
            if (same_file(e.path(), a.output)) {
                if (walker) walker->disable_recursion_pending();  // limn's own output: never an input
            } else if (!walker) {
                plan.skipped_folders.push_back(e.path());
            }
        } else if (e.is_symlink(e1) && !fs::exists(e.path(), e1)) {
            plan.dangling_links.push_back(e.path());
        } else if (e.is_regular_file(e1) || e.is_fifo(e1)) {
            (is_image_name(e.path()) ? found : plan.skipped_files).push_back(e.path());
        }
    };
    if (a.recursive) {
        for (auto it = fs::recursive_directory_iterator(in, ec); !ec && it != fs::recursive_directory_iterator();
             it.increment(ec)) {
            consider(*it, &it);
        }
    } else {
        for (const auto& e : fs::directory_iterator(in, ec)) consider(e, static_cast<fs::recursive_directory_iterator*>(nullptr));
    }
    if (found.empty()) {
        throw UsageError("no images in the folder " + in.string() + " (looked for .jpg, .png, .bmp, .tga, ...)");
    }
    std::sort(found.begin(), found.end());
    return found;
}

struct Inputs {
    std::vector<fs::path> files;
    std::map<std::string, fs::path> roots;  // an image found in a folder input -> that folder
    bool from_folder = false;
};

// Refuses a photo that would be processed twice: the same file given twice, or a file given
// beside a folder input that holds it.
void check_once(const Inputs& inputs) {
    std::map<std::string, fs::path> seen;  // canonical path -> the input it came from
    for (const auto& f : inputs.files) {
        std::error_code ec;
        const fs::path canon = fs::weakly_canonical(f, ec);
        const auto [it, fresh] = seen.emplace(ec ? f.string() : canon.string(), f);
        if (fresh) continue;
        const auto root = [&](const fs::path& p) {
            const auto r = inputs.roots.find(p.string());
            return r == inputs.roots.end() ? std::string() : r->second.string();
        };
        const std::string in1 = root(it->second), in2 = root(f);
        if (in1.empty() && in2.empty()) throw UsageError("input " + f.string() + " is given twice");
        const std::string folder = in1.empty() ? in2 : in1;
        throw UsageError("input " + (in1.empty() ? it->second : f).string() + " is also in the folder " + folder +
                         ", which is given too; give one or the other");
    }
}

Inputs collect_inputs(const Args& a, Plan& plan) {
    Inputs inputs;
    for (const auto& in : a.inputs) {
        std::error_code ec;
        if (fs::is_directory(in, ec)) {
            inputs.from_folder = true;
            const std::vector<fs::path> found = walk_folder(a, in, plan);
            for (const auto& f : found) inputs.roots.emplace(f.string(), fs::path(in));
            inputs.files.insert(inputs.files.end(), found.begin(), found.end());
        } else if (!fs::exists(in, ec)) {
            throw UsageError("input " + in + " does not exist");  // before any model is loaded
        } else {
            inputs.files.emplace_back(in);
        }
    }
    check_once(inputs);
    return inputs;
}

// Refuses outputs over inputs, read-only outputs and two inputs written to one output.
void check_outputs(const Args& a, const Plan& plan, const Inputs& inputs) {
    std::vector<fs::path> kept = read_files(a);
    kept.insert(kept.end(), inputs.files.begin(), inputs.files.end());
    std::map<std::string, fs::path> written;  // output -> the input written there
    for (const auto& j : plan.jobs) {
        check_output(a, j.out, kept);
        const std::string key = j.out.lexically_normal().string();
        if (const auto it = written.find(key); it != written.end()) {
            throw UsageError("inputs " + it->second.string() + " and " + j.in.string() + " would both be written to " +
                             j.out.string() + "; rename one or cartoonize them into separate folders");
        }
        written.emplace(key, j.in);
    }
}

// Options that would do nothing are said, not silently ignored.
void warn_unused(const Args& a, const fs::path& out, bool out_is_folder) {
    const std::string ext = out_is_folder ? "." + a.format : lower_extension(out);
    if (a.format_set && !out_is_folder) {
        std::cerr << "limn: warning: --format applies to folder outputs; " << out.string()
                  << " is written in the format its extension names\n";
    }
    if (a.quality && ext != ".jpg" && ext != ".jpeg" && ext != ".webp") {
        std::cerr << "limn: warning: --quality applies to JPEG and WebP outputs only\n";
    }
}

void create_folders(const std::vector<Job>& jobs) {
    for (const auto& j : jobs) {
        const fs::path folder = j.out.parent_path();
        if (folder.empty()) continue;
        std::error_code made;
        fs::create_directories(folder, made);
        if (made) throw UsageError("cannot create the output folder " + folder.string() + ": " + made.message());
    }
}

}  // namespace

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

Plan plan_jobs(const Args& a) {
    if (a.inputs.empty()) throw UsageError(a.command + " needs at least one input");
    if (a.output.empty()) throw UsageError(a.command + " needs -o OUT");
    const bool pipe_in = std::find(a.inputs.begin(), a.inputs.end(), "-") != a.inputs.end();
    if (pipe_in && a.inputs.size() != 1) throw UsageError("- (stdin) is the only input it can be given with");
    if (pipe_in || a.output == "-") return pipe_plan(a, pipe_in);
    Plan plan;
    const Inputs inputs = collect_inputs(a, plan);
    const fs::path out(a.output);
    std::error_code ec;
    const bool named_folder = fs::is_directory(out, ec) || a.output.back() == '/';
    if ((inputs.from_folder || inputs.files.size() > 1) && !named_folder && is_image_name(out)) {
        throw UsageError("several inputs need -o FOLDER; '" + a.output + "' names one image file");
    }
    const bool out_is_folder = inputs.from_folder || inputs.files.size() > 1 || named_folder;
    if (!out_is_folder) check_writable(out);
    for (const auto& f : inputs.files) {
        Job j{f, out};
        if (out_is_folder) {
            // -r keeps the subfolders of a folder input under the output folder.
            const auto root = inputs.roots.find(f.string());
            const fs::path sub = a.recursive && root != inputs.roots.end()
                                     ? f.parent_path().lexically_relative(root->second)
                                     : fs::path();
            j.out = (out / sub / (f.stem().string() + "." + a.format)).lexically_normal();
        }
        if (a.skip_existing && fs::exists(j.out, ec)) {
            ++plan.existing_outputs;
            continue;
        }
        plan.jobs.push_back(j);
    }
    check_outputs(a, plan, inputs);
    if (!a.dry_run) create_folders(plan.jobs);  // the output folders exist before any work
    if (!plan.jobs.empty()) warn_unused(a, out, out_is_folder);
    return plan;
}

void say_skipped(const Plan& plan) {
    const auto list = [](const char* what, const std::vector<fs::path>& paths) {
        if (paths.empty()) return;
        std::cerr << "limn: " << paths.size() << what;
        for (size_t k = 0; k < paths.size() && k < 5; ++k) std::cerr << " " << paths[k].string();
        std::cerr << (paths.size() > 5 ? " ...\n" : "\n");
    };
    list(" file(s) skipped, not images limn reads:", plan.skipped_files);
    list(" dangling symbolic link(s) skipped, they point to nothing:", plan.dangling_links);
    list(" subfolder(s) not entered (-r walks them):", plan.skipped_folders);
    if (plan.existing_outputs > 0) {
        std::cerr << "limn: " << plan.existing_outputs << " input(s) skipped, their output exists (--skip-existing)\n";
    }
}

}  // namespace limn_cli
