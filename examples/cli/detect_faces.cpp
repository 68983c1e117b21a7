// `limn detect-faces IN --detector MODEL [-o FILE]`: the faces found in one photo, as a landmarks
// file (landmarks.h) on stdout or in FILE.
#include "cli.h"

#include <iomanip>
#include <iostream>
#include <sstream>

namespace limn_cli {
namespace {

std::string landmarks_text(const Args& a, const limn::Image& img, const std::vector<limn_face>& faces) {
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
    return text.str();
}

}  // namespace

int detect_faces_command(const Args& a) {
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
    const std::string text = landmarks_text(a, img, faces);
    if (a.output.empty() || a.output == "-") {
        std::cout << text;
        return kOk;
    }
    try {
        write_file(a.output, text);  // never a half-written file, and never another file of that name
    } catch (const limn::Error& e) {
        std::cerr << "limn: " << e.what() << "\n";
        return kFailed;
    }
    if (!a.quiet) std::cerr << "limn: " << faces.size() << (faces.size() == 1 ? " face" : " faces") << " -> " << a.output << "\n";
    return kOk;
}

}  // namespace limn_cli
