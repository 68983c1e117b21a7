// `limn cartoonize` and `limn restore-faces`: plan the jobs, load the models, then run the photos
// (-j N of them in flight on the one model) and say how it went.
#include "cli.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <thread>

#include "landmarks.h"

namespace limn_cli {
namespace {

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

// The face options of the two commands, as the usage text states them.
void check_face_args(const Args& a) {
    const bool faces_mode = a.command == "restore-faces";
    const bool compound = !faces_mode && !a.head_model.empty();
    const std::string who = faces_mode ? "restore-faces" : "cartoonize --head-model";
    if (!faces_mode && !compound && (!a.detector.empty() || !a.landmarks.empty())) {
        throw UsageError("cartoonize uses --detector and --landmarks only with --head-model");
    }
    if (!a.landmarks.empty() && !a.detector.empty()) {
        throw UsageError(who + " takes the faces from --detector or from --landmarks, not both");
    }
    if (a.landmarks.empty() && a.detector.empty()) {
        throw UsageError(faces_mode ? "restore-faces needs either --detector FILE (a face_detect model) or --landmarks FILE"
                                    : "cartoonize --head-model needs either --detector MODEL (a face_detect model) or "
                                      "--landmarks FILE");
    }
    if (!a.landmarks.empty() && a.inputs.size() != 1) {
        throw UsageError((faces_mode ? "restore-faces" : "cartoonize") + std::string(" --landmarks takes one input photo"));
    }
}

std::vector<limn_face> read_landmarks(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw UsageError("cannot read the landmarks file " + path + ": " + std::strerror(errno));
    try {
        return parse_landmarks(in, path);
    } catch (const LandmarksError& e) {
        throw UsageError(e.what());
    }
}

struct Models {
    std::unique_ptr<limn::Model> model, detector, head;
};

Models load_models(const Args& a, const std::string& model_path) {
    const bool faces_mode = a.command == "restore-faces";
    Models m;
    m.model = load_model(a, model_path, faces_mode ? LIMN_MODEL_KIND_FACE_RESTORE : LIMN_MODEL_KIND_CARTOON);
    if (!a.detector.empty()) m.detector = load_model(a, a.detector, LIMN_MODEL_KIND_FACE_DETECT);
    if (!faces_mode && !a.head_model.empty()) {
        m.head = load_model(a, a.head_model, LIMN_MODEL_KIND_CARTOON);
        if (std::string(m.head->info().role) != "head") {
            throw limn::Error(LIMN_ERR_WRONG_MODEL_KIND, "--head-model '" + a.head_model +
                                                             "' is not a head model (role 'head'; "
                                                             "convert_dctnet writes cartoon_h.pb so)");
        }
    }
    return m;
}

// A --tile no photo larger than one tile could use, refused before any photo is read.
void check_tile(const Args& a, const limn::Model& model) {
    const limn_model_info info = model.info();
    if (a.tile && a.command == "cartoonize" && *a.tile < info.min_tile_size) {
        throw UsageError("--tile " + std::to_string(*a.tile) + " is too small for model '" + info.name +
                         "': it takes tiles of " + std::to_string(info.min_tile_size) +
                         " pixels or more (twice its tile margin plus its size multiple, rounded up)");
    }
}

// Every byte of an input, read once (stdin, a pipe or a FIFO cannot be read twice).
std::string read_input(const fs::path& in) {
    constexpr std::streamsize kMax = 0x7fffffff;  // the decoders take lengths as int
    std::ifstream file;
    std::istream* s = &std::cin;
    if (in != "-") {
        file.open(in, std::ios::binary);
        if (!file) throw limn::Error(LIMN_ERR_IO, std::string("cannot read it: ") + std::strerror(errno));
        s = &file;
    }
    std::string bytes;
    std::vector<char> chunk(1 << 16);
    while (s->read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || s->gcount() > 0) {
        bytes.append(chunk.data(), static_cast<size_t>(s->gcount()));
        if (static_cast<std::streamsize>(bytes.size()) > kMax) {
            throw limn::Error(LIMN_ERR_IMAGE_TOO_LARGE, "over 2 GiB; image files that large are not supported");
        }
    }
    if (s->bad()) throw limn::Error(LIMN_ERR_IO, std::string("cannot read it: ") + std::strerror(errno));
    return bytes;
}

bool has_transparency(const limn_image& img) {
    if (img.format != LIMN_PIXEL_RGBA8) return false;
    for (int32_t y = 0; y < img.height; ++y) {
        const uint8_t* row = img.data + static_cast<size_t>(y) * img.stride;
        for (int32_t x = 0; x < img.width; ++x)
            if (row[4 * x + 3] != 255) return true;
    }
    return false;
}

// One run of the command: the models, the progress bar and what the summary counts.
class Run {
public:
    Run(const Args& a, Models& m, std::vector<limn_face> faces, size_t workers)
        : a_(a), m_(m), faces_(std::move(faces)), workers_(workers), bar_(!a.quiet && workers == 1) {}

    void process(const Job& j);
    void summary(const Plan& plan, const std::string& device);
    bool failed() const { return failed_ > 0; }

private:
    limn_pipeline_stats run_pipeline(limn::Image& img, const std::string& label);
    void warn(const Job& j, const limn::Image& img, const std::vector<uint8_t>& icc);
    void write(const Job& j, const limn::Image& img, const std::vector<uint8_t>& icc);
    void done(const Job& j, const limn::Image& img, const limn_pipeline_stats& st, double s);
    void say(const std::string& line) {
        const std::lock_guard<std::mutex> lock(mutex_);
        bar_.clear();
        std::cerr << line << "\n";
    }

    const Args& a_;
    Models& m_;
    const std::vector<limn_face> faces_;
    const size_t workers_;
    ProgressBar bar_;
    std::mutex mutex_;  // stderr lines and the counters below
    int failed_ = 0, done_ = 0;
    double seconds_ = 0.0;
};

limn_pipeline_stats Run::run_pipeline(limn::Image& img, const std::string& label) {
    auto progress = [&](int32_t d, int32_t t) {
        if (workers_ == 1) bar_.show(label, d, t);
        return true;
    };
    if (a_.command == "restore-faces") {
        limn::RestoreFacesOptions o;
        o.progress(progress);
        if (a_.strength) o.strength(*a_.strength);
        if (a_.min_face_size) o.min_face_size(*a_.min_face_size);
        if (m_.detector) o.detector(*m_.detector, detect_options(a_));
        return m_.model->restore_faces(img.view(), img.view(), faces_, o);
    }
    limn::CartoonizeOptions o;
    o.progress(progress);
    if (a_.strength) o.strength(*a_.strength);
    if (a_.max_side) o.max_side(*a_.max_side);
    if (a_.tile) o.tile_size(*a_.tile);
    if (m_.head) {
        o.head_model(*m_.head).faces(faces_);
        if (a_.working_size) o.working_size(*a_.working_size);
        if (m_.detector) o.detector(*m_.detector, detect_options(a_));
    }
    return m_.model->cartoonize(img.view(), img.view(), o);
}

// What the output format loses, said.
void Run::warn(const Job& j, const limn::Image& img, const std::vector<uint8_t>& icc) {
    std::string ext = j.out == "-" ? "." + a_.format : j.out.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if ((ext == ".jpg" || ext == ".jpeg") && has_transparency(img.view())) {
        say("limn: warning: " + j.out.string() + ": JPEG has no alpha; the transparency of " + j.in.string() +
            " is dropped (PNG keeps it)");
    }
    if (!icc.empty() && (ext == ".bmp" || ext == ".tga")) {
        say("limn: warning: " + j.out.string() + ": BMP and TGA cannot hold the ICC colour profile of " +
            j.in.string() + "; it is dropped (PNG, JPEG and WebP keep it)");
    }
}

void Run::write(const Job& j, const limn::Image& img, const std::vector<uint8_t>& icc) {
    if (j.out != "-") {
        limn::save_image(j.out.string(), img.view(), a_.quality, LIMN_FILE_FORMAT_AUTO, icc);
        return;
    }
    const std::vector<uint8_t> encoded = limn::encode_image(
        img.view(), static_cast<limn_file_format>(*limn::name_value(LIMN_NAMES_FILE_FORMAT, a_.format)), a_.quality, icc);
    // Straight to the descriptor (nothing else goes to stdout here), so a failure is this one's.
    for (size_t done = 0; done < encoded.size();) {
        const ssize_t n = ::write(STDOUT_FILENO, encoded.data() + done, encoded.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            throw limn::Error(LIMN_ERR_IO, std::string("cannot write the image to standard output: ") +
                                               std::strerror(n < 0 ? errno : EIO));
        }
        done += static_cast<size_t>(n);
    }
}

void Run::done(const Job& j, const limn::Image& img, const limn_pipeline_stats& st, double s) {
    const std::lock_guard<std::mutex> lock(mutex_);
    seconds_ += s;
    ++done_;
    bar_.clear();
    if (a_.quiet) return;
    const auto count = [](int32_t n, const char* one) { return std::to_string(n) + " " + one + (n == 1 ? "" : "s"); };
    std::string what = count(st.tiles, "tile");
    if (m_.head) {
        what += ", " + count(st.faces, "face") + " stylized";
        if (st.faces_skipped > 0) what += ", " + std::to_string(st.faces_skipped) + " outside";
    }
    if (a_.command == "restore-faces") {
        what = count(st.faces, "face") + " restored";
        if (st.faces_skipped > 0) what += ", " + std::to_string(st.faces_skipped) + " skipped (under --min-face-size or outside)";
    }
    std::cerr << "limn: " << j.in.string() << " -> " << j.out.string() << " (" << img.width() << "x" << img.height()
              << ", " << what << ", " << std::fixed << std::setprecision(2) << s << " s)\n";
}

void Run::process(const Job& j) {
    try {
        const auto t0 = std::chrono::steady_clock::now();
        const std::string bytes = read_input(j.in);
        const std::string name = j.in == "-" ? "" : j.in.string();
        limn::Image img = limn::load_image_from_memory(bytes.data(), bytes.size(), static_cast<limn_pixel_format>(0),
                                                       a_.max_pixels, true, name);
        // The photo's colour profile goes with it to the output.
        const std::vector<uint8_t> icc = limn::read_icc_profile_from_memory(bytes.data(), bytes.size());
        const limn_pipeline_stats st = run_pipeline(img, j.in.filename().string());
        warn(j, img, icc);
        write(j, img, icc);
        done(j, img, st, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    } catch (const std::exception& e) {  // limn::Error, and std::bad_alloc: this photo fails, the rest go on
        say("limn: " + j.in.string() + ": " + e.what());
        const std::lock_guard<std::mutex> lock(mutex_);
        ++failed_;
    }
}

void Run::summary(const Plan& plan, const std::string& device) {
    if (a_.quiet) return;
    const limn_memory_stats m = limn::memory_stats(device);
    say_skipped(plan);
    std::cerr << "limn: " << done_ << " of " << plan.jobs.size() << " images done";
    if (done_ > 0) std::cerr << ", " << std::fixed << std::setprecision(2) << seconds_ / done_ << " s per image";
    std::cerr << ", peak memory " << mib(m.peak_allocated) << " on " << device;
    // On the CPU, tensors are part of the process's resident set, which holds LibTorch too.
    if (device == "cpu") std::cerr << " (process peak " << mib(m.peak_reserved) << ")";
    std::cerr << "\n";
}

// -j N: N photos in flight on the one model (it is thread-safe), each read, computed and written
// by its own worker, so files overlap the network's work.
void run_all(const std::vector<Job>& jobs, size_t workers, Run& run) {
    if (workers == 1) {
        for (const Job& j : jobs) run.process(j);
        return;
    }
    std::atomic<size_t> next{0};
    std::vector<std::thread> pool;
    for (size_t w = 0; w < workers; ++w) {
        pool.emplace_back([&] {
            for (size_t i; (i = next++) < jobs.size();) run.process(jobs[i]);
        });
    }
    for (auto& t : pool) t.join();
}

// --dry-run --json: one object with the model files (registry names resolved), the device,
// precision and every option given, the (input, output) pairs and what was left out. `limn
// cartoonize ... --ray` runs this plan on Ray Data workers.
std::string plan_json(const Args& a, const Plan& plan, const std::string& model, const std::string& detector,
                      const std::string& head) {
    const auto text = [](const std::string& s) { return s.empty() ? std::string("null") : json_string(s); };
    const auto paths = [](const std::vector<fs::path>& v) {
        std::string out = "[";
        for (size_t k = 0; k < v.size(); ++k) out += (k ? ", " : "") + json_string(v[k].string());
        return out + "]";
    };
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
    for (size_t k = 0; k < plan.jobs.size(); ++k) {
        o << (k ? ", " : "") << "{\"in\": " << json_string(plan.jobs[k].in.string()) << ", \"out\": "
          << json_string(plan.jobs[k].out.string()) << "}";
    }
    o << "], \"skipped_existing\": " << plan.existing_outputs << ", \"skipped_files\": " << paths(plan.skipped_files)
      << ", \"dangling_links\": " << paths(plan.dangling_links) << ", \"skipped_folders\": "
      << paths(plan.skipped_folders) << "}\n";
    return o.str();
}

// --dry-run: the plan, as "IN -> OUT" lines, or with --json as one JSON object.
int print_plan(const Args& a, const Plan& plan, const std::string& model_path) {
    std::string model, detector, head;
    try {
        model = model_file(model_path);
        if (!a.detector.empty()) detector = model_file(a.detector);
        if (!a.head_model.empty()) head = model_file(a.head_model);
    } catch (const limn::Error& e) {
        std::cerr << "limn: " << e.what() << "\n";
        return kNoModel;
    }
    if (a.json) {
        std::cout << plan_json(a, plan, model, detector, head);
        return kOk;
    }
    for (const Job& j : plan.jobs) std::cout << j.in.string() << " -> " << j.out.string() << "\n";
    if (!a.quiet) say_skipped(plan);
    return kOk;
}

}  // namespace

int images_command(const Args& a, const char* argv0) {
    const bool faces_mode = a.command == "restore-faces";
    if (faces_mode || !a.head_model.empty() || !a.detector.empty() || !a.landmarks.empty()) check_face_args(a);
    const std::vector<limn_face> faces = !a.landmarks.empty() ? read_landmarks(a.landmarks) : std::vector<limn_face>();
    const Plan plan = plan_jobs(a);
    const std::string model_path = !a.model.empty() ? a.model : faces_mode ? "" : default_cartoon_model(argv0);
    if (model_path.empty()) throw UsageError("restore-faces needs --model FILE (a face_restore model)");
    if (a.dry_run) return print_plan(a, plan, model_path);
    if (plan.jobs.empty()) {
        if (!a.quiet) std::cerr << "limn: every output exists already (--skip-existing): nothing to do\n";
        return kOk;
    }
    Models models;
    try {
        models = load_models(a, model_path);
    } catch (const limn::Error& e) {
        std::cerr << "limn: " << e.what() << "\n";
        return kNoModel;
    }
    check_tile(a, *models.model);
    const limn_model_info info = models.model->info();
    if (!a.quiet) {
        std::cerr << "limn: model '" << info.name << "' (" << info.format << ") on " << info.device << " in "
                  << limn::precision_name(info.precision) << "\n";
        if (info.precision_note[0]) std::cerr << "limn: " << info.precision_note << "\n";
    }
    limn::reset_peak_memory(info.device);
    const size_t workers = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(a.jobs), plan.jobs.size()));
    Run run(a, models, faces, workers);
    run_all(plan.jobs, workers, run);
    run.summary(plan, info.device);
    return run.failed() ? kFailed : kOk;
}

}  // namespace limn_cli
