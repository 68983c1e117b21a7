// libFuzzer target: decoding untrusted image bytes (src/image_io.cpp, stb_image, the EXIF parser).
// Every input must either decode or fail with a limn::core::Failure; crashes, sanitizer reports, leaks
// and allocations over the fuzzer's limit are bugs. The input's size picks the pixel format and
// whether EXIF orientation is applied, so plain image files work as a seed corpus.
//
// Built and run by tests/fuzz/run.sh (libFuzzer), replayed over corpus/image_load/ by CTest.
// stb's TGA decoder takes almost any bytes for an image of the size in their first bytes, so many
// inputs decode to images near the pixel limit; -DLIMN_FUZZ_MAX_PIXELS=262144 trades that for
// speed.
#include <cstddef>
#include <cstdint>

#include "error.h"
#include "exif.h"
#include "image_io.h"
#include "icc.h"
#include "pixels.h"

#ifndef LIMN_FUZZ_MAX_PIXELS
#define LIMN_FUZZ_MAX_PIXELS (4096 * 4096)
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    limn::core::LoadOptions options;
    options.format = static_cast<limn_pixel_format>(size % 7);  // 0 (default) or a format
    options.apply_orientation = (size / 7) % 4 != 3;
    options.max_pixels = LIMN_FUZZ_MAX_PIXELS;
    try {
        const limn::core::OwnedImage image = limn::core::load_image_memory(data, size, "<fuzz>", options);
        limn::core::check_image(image.get(), "decoded", options.max_pixels);
    } catch (const limn::core::Failure&) {
    }
    // The ICC profile reader walks the same containers (JPEG APP2, PNG iCCP, WebP ICCP).
    if (limn::core::find_icc_profile(data, size).size() > limn::core::kMaxIccProfileBytes) __builtin_trap();
    const int orientation = limn::core::jpeg_exif_orientation(data, size);
    if (orientation < 1 || orientation > 8) __builtin_trap();
    return 0;
}
