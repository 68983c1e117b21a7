/* The public C ABI as an engine sees it: only limn.h, compiled as C99 -pedantic -Werror, linked
 * against liblimn.so. Usage: test_c_api FIXTURE_DIR */
#define _POSIX_C_SOURCE 200809L /* setenv, mkdtemp */
#include <limn/limn.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int passed = 0, failed = 0;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (cond) {                                                                 \
            ++passed;                                                               \
        } else {                                                                    \
            ++failed;                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

/* Checks a status and that the thread's message mentions `needle`. */
#define CHECK_ERR(call, status, needle)                                                       \
    do {                                                                                      \
        limn_status st_ = (call);                                                             \
        CHECK(st_ == (status));                                                               \
        if (st_ != (status))                                                                  \
            fprintf(stderr, "  got %d (%s): %s\n", (int)st_, limn_status_string(st_),         \
                    limn_last_error());                                                       \
        CHECK(strstr(limn_last_error(), (needle)) != NULL);                                   \
        if (strstr(limn_last_error(), (needle)) == NULL)                                      \
            fprintf(stderr, "  message '%s' lacks '%s'\n", limn_last_error(), (needle));      \
    } while (0)

static char dir[4096];

static const char* fixture(const char* name) {
    static char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

/* The CPU in fp32: the results these tests compare are exact there. (AUTO may choose bf16 on a CPU
 * that computes it natively; test_auto_precision checks that.) */
static limn_model_options cpu_options(void) {
    limn_model_options o;
    limn_model_options_init(&o);
    o.device = "cpu";
    o.precision = LIMN_PRECISION_FP32;
    return o;
}

/* AUTO on the CPU: the identity is as close to fp32 in bf16 as 8-bit pixels allow, so it gets what
 * the device says AUTO picks. */
static void test_auto_precision(void) {
    limn_model* model = NULL;
    limn_model_options o;
    limn_model_info info;
    limn_device_info cpu;
    limn_model_options_init(&o);
    o.device = "cpu";
    memset(&cpu, 0, sizeof cpu);
    cpu.struct_size = sizeof cpu;
    CHECK(limn_device_get_info(0, &cpu) == LIMN_OK);
    CHECK(limn_model_load(fixture("identity.pt"), &o, &model) == LIMN_OK);
    if (!model) return;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK(limn_model_get_info(model, &info) == LIMN_OK);
    CHECK(strcmp(limn_precision_name(info.precision), cpu.auto_precision) == 0);
    CHECK(info.precision_note[0] == '\0');
    limn_model_free(model);
}

static void test_versions(void) {
    const char* info = limn_build_info();
    CHECK(limn_version_number() == LIMN_VERSION_NUMBER);
    CHECK(strcmp(limn_version_string(), LIMN_VERSION_STRING) == 0);
    CHECK(info != NULL && strstr(info, "LibTorch") != NULL);
    CHECK(strstr(info, "CUDA compiled in") != NULL);
    CHECK(strstr(info, "cpu") != NULL);
    CHECK(strcmp(limn_status_string(LIMN_OK), "ok") == 0);
    CHECK(strcmp(limn_status_string(LIMN_ERR_OUT_OF_MEMORY), "out of memory") == 0);
    CHECK(strcmp(limn_status_string((limn_status)999), "unknown status") == 0);
}

static void test_null_arguments(void) {
    limn_model* model = (limn_model*)0x1;
    int32_t count = -7;
    limn_image* img = (limn_image*)0x1;
    limn_memory_stats stats;
    limn_model_options o = cpu_options();

    stats.struct_size = sizeof stats;
    CHECK_ERR(limn_model_load(NULL, &o, &model), LIMN_ERR_INVALID_ARGUMENT, "path");
    CHECK(model == (limn_model*)0x1); /* untouched on failure */
    CHECK_ERR(limn_model_load(fixture("identity.pt"), &o, NULL), LIMN_ERR_INVALID_ARGUMENT, "out");
    CHECK_ERR(limn_model_load_from_memory(NULL, 10, &o, &model), LIMN_ERR_INVALID_ARGUMENT, "data");
    CHECK_ERR(limn_device_count(NULL), LIMN_ERR_INVALID_ARGUMENT, "out_count");
    CHECK(count == -7);
    CHECK_ERR(limn_memory_get_stats(NULL, &stats), LIMN_ERR_INVALID_ARGUMENT, "device");
    CHECK_ERR(limn_memory_get_stats("cpu", NULL), LIMN_ERR_INVALID_ARGUMENT, "out");
    stats.struct_size = 0;
    CHECK_ERR(limn_memory_get_stats("cpu", &stats), LIMN_ERR_INVALID_ARGUMENT, "struct_size");
    CHECK_ERR(limn_model_run(NULL, NULL, NULL), LIMN_ERR_INVALID_ARGUMENT, "model");
    CHECK_ERR(limn_image_alloc(0, 5, LIMN_PIXEL_RGB8, &img), LIMN_ERR_INVALID_ARGUMENT, "0x5");
    CHECK(img == (limn_image*)0x1);
    CHECK_ERR(limn_image_alloc(4, 4, (limn_pixel_format)42, &img), LIMN_ERR_INVALID_ARGUMENT, "format");
    CHECK(img == (limn_image*)0x1);
    /* free(NULL) is fine */
    limn_model_free(NULL);
    limn_image_free(NULL);
    limn_model_options_init(NULL);
    ++passed;
}

static void test_devices(void) {
    int32_t count = 0;
    limn_device_info info;
    char id[32] = "untouched";
    CHECK(limn_device_count(&count) == LIMN_OK);
    CHECK(count >= 1);
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK(limn_device_get_info(0, &info) == LIMN_OK);
    CHECK(info.type == LIMN_DEVICE_CPU);
    CHECK(strcmp(info.id, "cpu") == 0);
    CHECK(info.total_memory > 0);
    /* fp32 always; bf16 and fp16 where the CPU computes them (AVX512/AMX), and AUTO picks bf16 then. */
    CHECK(strncmp(info.native_precisions, "fp32", 4) == 0);
    CHECK(strcmp(info.auto_precision, strstr(info.native_precisions, "bf16") ? "bf16" : "fp32") == 0);
    CHECK_ERR(limn_device_get_info(count, &info), LIMN_ERR_INVALID_ARGUMENT, "out of range");

    CHECK(limn_device_resolve("cpu", id, sizeof id) == LIMN_OK);
    CHECK(strcmp(id, "cpu") == 0);
    CHECK(limn_device_resolve("auto", id, sizeof id) == LIMN_OK);
    CHECK(strcmp(id, limn_cuda_available() ? "cuda:0" : "cpu") == 0);
    strcpy(id, "untouched");
    CHECK_ERR(limn_device_resolve("cuda:99", id, sizeof id), LIMN_ERR_DEVICE_UNAVAILABLE, "cuda:99");
    CHECK(strcmp(id, "untouched") == 0);
    CHECK_ERR(limn_device_resolve("gpu", id, sizeof id), LIMN_ERR_INVALID_ARGUMENT, "'gpu'");
    CHECK_ERR(limn_device_resolve("cpu", id, 2), LIMN_ERR_INVALID_ARGUMENT, "out_size");
    if (!limn_cuda_available()) {
        CHECK_ERR(limn_device_resolve("cuda", id, sizeof id), LIMN_ERR_DEVICE_UNAVAILABLE,
                  "no usable CUDA device");
    }
}

static void test_memory(void) {
    limn_memory_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    CHECK(limn_memory_get_stats("cpu", &s) == LIMN_OK);
    CHECK(s.reserved > 0 && s.peak_reserved >= s.reserved && s.peak_allocated >= s.allocated);
    CHECK(s.device_total > 0);
    CHECK(limn_memory_set_limit("cpu", 1u << 30) == LIMN_OK);
    CHECK(limn_memory_get_stats("cpu", &s) == LIMN_OK);
    CHECK(s.limit == (1u << 30));
    CHECK(limn_memory_set_limit("cpu", 0) == LIMN_OK);
    CHECK(limn_memory_release_cached("cpu") == LIMN_OK);
    CHECK(limn_memory_reset_peak("cpu") == LIMN_OK);
    CHECK_ERR(limn_memory_set_limit("cpu", (uint64_t)1 << 62), LIMN_ERR_INVALID_ARGUMENT, "exceeds");
    CHECK_ERR(limn_memory_set_limit("cuda:7", 1024), LIMN_ERR_DEVICE_UNAVAILABLE, "cuda:7");
}

static void expect_load_error(const char* name, limn_status status, const char* needle) {
    limn_model* model = (limn_model*)0x1;
    limn_model_options o = cpu_options();
    CHECK_ERR(limn_model_load(fixture(name), &o, &model), status, needle);
    CHECK(model == (limn_model*)0x1);
    /* The message names the file. */
    CHECK(strstr(limn_last_error(), name) != NULL);
}

static void test_bad_models(void) {
    limn_model* model = (limn_model*)0x1;
    limn_model_options o = cpu_options();
    expect_load_error("does-not-exist.pt", LIMN_ERR_IO, "No such file");
    expect_load_error("empty.pt", LIMN_ERR_INVALID_MODEL, "empty");
    expect_load_error("truncated.pt", LIMN_ERR_INVALID_MODEL, "not a TorchScript archive");
    expect_load_error("garbage.pt", LIMN_ERR_INVALID_MODEL, "not a TorchScript archive");
    expect_load_error("plain.zip", LIMN_ERR_INVALID_MODEL, "not a TorchScript archive");
    expect_load_error("state_dict.pth", LIMN_ERR_INVALID_MODEL, "not a TorchScript archive");
    expect_load_error("no_metadata.pt", LIMN_ERR_INVALID_MODEL, "no limn metadata");
    expect_load_error("future_version.pt", LIMN_ERR_INVALID_MODEL, "format version 99");
    expect_load_error("bad_kind.pt", LIMN_ERR_INVALID_MODEL, "painting");
    expect_load_error("bad_multiple.pt", LIMN_ERR_INVALID_MODEL, "limn_size_multiple");
    expect_load_error("wrong_shape.pt", LIMN_ERR_INVALID_MODEL, "shape");
    expect_load_error("selftest_mismatch.pt", LIMN_ERR_INVALID_MODEL, "self-test");

    o.expected_kind = LIMN_MODEL_KIND_FACE_RESTORE;
    CHECK_ERR(limn_model_load(fixture("identity.pt"), &o, &model), LIMN_ERR_WRONG_MODEL_KIND,
              "is a cartoon model");
    CHECK(model == (limn_model*)0x1);

    o = cpu_options();
    o.device = "cuda:99";
    CHECK_ERR(limn_model_load(fixture("identity.pt"), &o, &model), LIMN_ERR_DEVICE_UNAVAILABLE,
              "cuda:99");
    o = cpu_options();
    o.precision = (limn_precision)17;
    CHECK_ERR(limn_model_load(fixture("identity.pt"), &o, &model), LIMN_ERR_INVALID_ARGUMENT,
              "precision");
    o = cpu_options();
    o.struct_size = 0;
    CHECK_ERR(limn_model_load(fixture("identity.pt"), &o, &model), LIMN_ERR_INVALID_ARGUMENT,
              "struct_size");
    CHECK(model == (limn_model*)0x1);
}

static void test_run(void) {
    enum { W = 7, H = 5, STRIDE = 7 * 4 + 3 };
    uint8_t in_px[H * STRIDE];
    uint8_t out_px[H * W * 3];
    limn_image in, out, *alloc = NULL;
    limn_model* model = NULL;
    limn_model_info info;
    limn_model_options o = cpu_options();
    int i, x, y, same = 1;

    for (i = 0; i < (int)sizeof in_px; ++i) in_px[i] = (uint8_t)(i * 37 + 11);
    CHECK(limn_model_load(fixture("identity.pt"), &o, &model) == LIMN_OK);
    if (!model) return;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK(limn_model_get_info(model, &info) == LIMN_OK);
    CHECK(info.kind == LIMN_MODEL_KIND_CARTOON);
    CHECK(strcmp(info.name, "identity") == 0);
    CHECK(strcmp(info.device, "cpu") == 0);
    CHECK(info.precision == LIMN_PRECISION_FP32);
    CHECK(info.size_multiple == 1 && info.fixed_width == 0);
    test_auto_precision();

    in.data = in_px; in.width = W; in.height = H; in.stride = STRIDE; in.format = LIMN_PIXEL_BGRA8;
    out.data = out_px; out.width = W; out.height = H; out.stride = W * 3; out.format = LIMN_PIXEL_RGB8;
    CHECK(limn_model_run(model, &in, &out) == LIMN_OK);
    for (y = 0; y < H; ++y)
        for (x = 0; x < W; ++x) {
            const uint8_t* s = in_px + y * STRIDE + x * 4;
            const uint8_t* d = out_px + y * W * 3 + x * 3;
            same &= d[0] == s[2] && d[1] == s[1] && d[2] == s[0];
        }
    CHECK(same);

    CHECK(limn_model_run_alloc(model, &in, LIMN_PIXEL_RGBA8, &alloc) == LIMN_OK);
    CHECK(alloc != NULL && alloc->width == W && alloc->height == H && alloc->stride == W * 4);
    if (alloc) CHECK(alloc->data[3] == in_px[3]); /* alpha passed through */
    limn_image_free(alloc);

    /* bad images: each a status, output untouched */
    memset(out_px, 0xAB, sizeof out_px);
    in.stride = W * 4 - 1;
    CHECK_ERR(limn_model_run(model, &in, &out), LIMN_ERR_INVALID_ARGUMENT, "stride");
    in.stride = STRIDE;
    in.width = 0;
    CHECK_ERR(limn_model_run(model, &in, &out), LIMN_ERR_INVALID_ARGUMENT, "not positive");
    in.width = -3;
    CHECK_ERR(limn_model_run(model, &in, &out), LIMN_ERR_INVALID_ARGUMENT, "not positive");
    in.width = W;
    in.data = NULL;
    CHECK_ERR(limn_model_run(model, &in, &out), LIMN_ERR_INVALID_ARGUMENT, "data is NULL");
    in.data = in_px;
    out.width = W - 1;
    CHECK_ERR(limn_model_run(model, &in, &out), LIMN_ERR_INVALID_ARGUMENT, "output");
    out.width = W;
    in.format = (limn_pixel_format)0;
    CHECK_ERR(limn_model_run(model, &in, &out), LIMN_ERR_INVALID_ARGUMENT, "pixel format");
    in.format = LIMN_PIXEL_BGRA8;
    CHECK(out_px[0] == 0xAB && out_px[sizeof out_px - 1] == 0xAB);
    limn_model_free(model);

    /* the pixel limit */
    o.max_pixels = W * H - 1;
    model = NULL;
    CHECK(limn_model_load(fixture("identity.pt"), &o, &model) == LIMN_OK);
    CHECK_ERR(limn_model_run(model, &in, &out), LIMN_ERR_IMAGE_TOO_LARGE, "over the limit");
    limn_model_free(model);

    /* the size rule: tiny_unet needs multiples of 2 */
    o = cpu_options();
    model = NULL;
    CHECK(limn_model_load(fixture("tiny_unet.pt"), &o, &model) == LIMN_OK);
    CHECK_ERR(limn_model_run(model, &in, &out), LIMN_ERR_SIZE_RULE, "multiples of 2");
    limn_model_free(model);

    /* a detector cannot be run raw */
    model = NULL;
    CHECK(limn_model_load(fixture("tiny_detect.pt"), &o, &model) == LIMN_OK);
    CHECK_ERR(limn_model_run(model, &in, &out), LIMN_ERR_WRONG_MODEL_KIND, "face_detect");
    limn_model_free(model);

    /* NaN is reported, not returned as a black image: by the warm-up at load time, or (with
     * the warm-up off) by the run */
    model = (limn_model*)0x1;
    CHECK_ERR(limn_model_load(fixture("nan.pt"), &o, &model), LIMN_ERR_NON_FINITE, "non-finite");
    CHECK(model == (limn_model*)0x1);
    o.warmup = 0;
    model = NULL;
    CHECK(limn_model_load(fixture("nan.pt"), &o, &model) == LIMN_OK);
    CHECK_ERR(limn_model_run(model, &in, &out), LIMN_ERR_NON_FINITE, "non-finite");
    limn_model_free(model);
}

static void test_load_from_memory(void) {
    FILE* f = fopen(fixture("identity.pt"), "rb");
    long size;
    void* bytes;
    limn_model* model = NULL;
    limn_model_options o = cpu_options();
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    bytes = malloc((size_t)size);
    CHECK(fread(bytes, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    o.name = "asset-pack/identity";
    CHECK(limn_model_load_from_memory(bytes, (size_t)size, &o, &model) == LIMN_OK);
    limn_model_free(model);
    model = (limn_model*)0x1;
    CHECK_ERR(limn_model_load_from_memory(bytes, (size_t)size / 3, &o, &model), LIMN_ERR_INVALID_MODEL,
              "asset-pack/identity");
    CHECK(model == (limn_model*)0x1);
    CHECK_ERR(limn_model_load_from_memory(bytes, 0, &o, &model), LIMN_ERR_INVALID_MODEL, "empty");
    free(bytes);
}

/* A compiled package through the C ABI: format and smallest input in the info, a run, refusals
 * that name the package, and the expected SHA-256. */
static void test_compiled_package(void) {
    limn_model* model = NULL;
    limn_model_options o = cpu_options();
    limn_model_info info;
    uint8_t px[8 * 6 * 3], out[8 * 6 * 3];
    limn_image in, res;
    size_t i;
    CHECK(limn_model_load(fixture("tiny_unet.pt2"), &o, &model) == LIMN_OK);
    if (!model) return;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK(limn_model_get_info(model, &info) == LIMN_OK);
    CHECK(strcmp(info.format, "pt2") == 0);
    CHECK(info.precision == LIMN_PRECISION_FP32);
    CHECK(info.min_width == 4 && info.min_height == 4);
    for (i = 0; i < sizeof px; ++i) px[i] = (uint8_t)(i * 7);
    in.data = px;
    in.width = 8;
    in.height = 6;
    in.stride = 8 * 3;
    in.format = LIMN_PIXEL_RGB8;
    res = in;
    res.data = out;
    CHECK(limn_model_run(model, &in, &res) == LIMN_OK);
    in.width = 2;
    in.height = 2;
    res.width = 2;
    res.height = 2;
    CHECK_ERR(limn_model_run(model, &in, &res), LIMN_ERR_SIZE_RULE, "at least 4x4");
    limn_model_free(model);

    model = (limn_model*)0x1;
    o.precision = LIMN_PRECISION_FP16;
    CHECK_ERR(limn_model_load(fixture("tiny_unet.pt2"), &o, &model), LIMN_ERR_UNSUPPORTED, "compiled for fp32");
    CHECK(model == (limn_model*)0x1);
    expect_load_error("alien_cpu.pt2", LIMN_ERR_UNSUPPORTED, "avx1024");
    expect_load_error("no_metadata.pt2", LIMN_ERR_INVALID_MODEL, "without limn metadata");

    o = cpu_options();
    o.expected_sha256 = "not-a-digest";
    CHECK_ERR(limn_model_load(fixture("tiny_unet.pt2"), &o, &model), LIMN_ERR_INVALID_ARGUMENT, "expected_sha256");
    o.expected_sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
    CHECK_ERR(limn_model_load(fixture("tiny_unet.pt2"), &o, &model), LIMN_ERR_INVALID_MODEL, "SHA-256");
    CHECK(model == (limn_model*)0x1);
}

/* Image files and pipelines as a C caller sees them: encode in memory, load back, cartoonize,
 * restore faces; errors leave out-parameters untouched. */
static void test_files_and_pipelines(void) {
    limn_image* img = NULL;
    limn_image* back = (limn_image*)0x1;
    void* png = (void*)0x1;
    size_t png_size = 7;
    limn_image_save_options so;
    limn_image_load_options lo;
    limn_cartoonize_options co;
    limn_restore_faces_options fo;
    limn_pipeline_stats stats;
    limn_model_options mo = cpu_options();
    limn_model* model = NULL;
    int x, y;

    CHECK(limn_image_alloc(33, 17, LIMN_PIXEL_RGB8, &img) == LIMN_OK);
    for (y = 0; y < 17; ++y)
        for (x = 0; x < 33 * 3; ++x) img->data[(size_t)y * img->stride + (size_t)x] = (uint8_t)(x * 7 + y * 3);

    limn_image_save_options_init(&so);
    CHECK_ERR(limn_image_encode(img, &so, &png, &png_size), LIMN_ERR_INVALID_ARGUMENT, "file_format");
    CHECK(png == (void*)0x1 && png_size == 7);
    so.file_format = LIMN_FILE_FORMAT_PNG;
    so.jpeg_quality = 0;
    CHECK_ERR(limn_image_encode(img, &so, &png, &png_size), LIMN_ERR_INVALID_ARGUMENT, "jpeg_quality");
    so.jpeg_quality = 90;
    CHECK(limn_image_encode(img, &so, &png, &png_size) == LIMN_OK);
    CHECK(png_size > 8 && memcmp(png, "\x89PNG", 4) == 0);

    limn_image_load_options_init(&lo);
    CHECK(limn_image_load_from_memory(png, png_size, &lo, &back) == LIMN_OK);
    CHECK(back->width == 33 && back->height == 17 && back->format == LIMN_PIXEL_RGB8);
    CHECK(memcmp(back->data, img->data, 33 * 3) == 0);
    limn_image_free(back);
    back = (limn_image*)0x1;
    lo.max_pixels = 100;
    CHECK_ERR(limn_image_load_from_memory(png, png_size, &lo, &back), LIMN_ERR_IMAGE_TOO_LARGE, "33x17");
    CHECK_ERR(limn_image_load_from_memory(png, 10, NULL, &back), LIMN_ERR_INVALID_IMAGE, "<memory>");
    lo.max_pixels = 0;
    lo.name = "from-a-pipe.png"; /* what messages call the bytes */
    CHECK_ERR(limn_image_load_from_memory(png, 10, &lo, &back), LIMN_ERR_INVALID_IMAGE, "from-a-pipe.png");
    CHECK_ERR(limn_image_load("/nonexistent/photo.jpg", NULL, &back), LIMN_ERR_IO, "/nonexistent/photo.jpg");
    CHECK_ERR(limn_image_load(NULL, NULL, &back), LIMN_ERR_INVALID_ARGUMENT, "path");
    CHECK(back == (limn_image*)0x1);
    CHECK_ERR(limn_image_save("/nonexistent/dir/out.png", img, NULL), LIMN_ERR_IO, "/nonexistent/dir/out.png");
    CHECK_ERR(limn_image_save("out.xyz", img, NULL), LIMN_ERR_INVALID_ARGUMENT, "out.xyz");
    limn_buffer_free(png);
    limn_buffer_free(NULL);

    CHECK(limn_model_load(fixture("tiny_unet.pt"), &mo, &model) == LIMN_OK);
    limn_cartoonize_options_init(&co);
    CHECK(co.strength == 1.0f && co.tile_size == 0);
    stats.struct_size = sizeof stats;
    CHECK(limn_cartoonize(model, img, img, &co, &stats) == LIMN_OK);
    CHECK(stats.tiles == 1 && stats.width == 33 && stats.height == 17);
    co.strength = -1.0f;
    CHECK_ERR(limn_cartoonize(model, img, img, &co, NULL), LIMN_ERR_INVALID_ARGUMENT, "strength");
    {
        /* min_tile_size: the smallest tile_size for a picture larger than one tile. */
        limn_model_info info;
        limn_image* large = NULL;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        CHECK(limn_model_get_info(model, &info) == LIMN_OK);
        CHECK(info.min_tile_size > 2 * info.tile_margin && info.min_tile_size % info.size_multiple == 0);
        CHECK(limn_image_alloc(4 * info.min_tile_size, 3 * info.min_tile_size, LIMN_PIXEL_RGB8, &large) == LIMN_OK);
        limn_cartoonize_options_init(&co);
        co.tile_size = info.min_tile_size - 1;
        CHECK_ERR(limn_cartoonize(model, large, large, &co, NULL), LIMN_ERR_INVALID_ARGUMENT, "tile_size");
        co.tile_size = info.min_tile_size;
        CHECK(limn_cartoonize(model, large, large, &co, &stats) == LIMN_OK);
        CHECK(stats.tiles > 1);
        limn_image_free(large);
    }
    limn_restore_faces_options_init(&fo);
    CHECK(fo.strength == 1.0f && fo.feather > 0.0f);
    CHECK_ERR(limn_restore_faces(model, img, img, NULL, 0, &fo, NULL), LIMN_ERR_WRONG_MODEL_KIND, "face_restore");
    limn_model_free(model);
    limn_image_free(img);
}

/* Whether `s` is valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
static int is_utf8(const char* s) {
    const unsigned char* p = (const unsigned char*)s;
    while (*p) {
        unsigned long cp;
        int len, k;
        if (*p < 0x80) { ++p; continue; }
        if ((*p >> 5) == 0x6) { len = 2; cp = *p & 0x1Fu; }
        else if ((*p >> 4) == 0xE) { len = 3; cp = *p & 0x0Fu; }
        else if ((*p >> 3) == 0x1E) { len = 4; cp = *p & 0x07u; }
        else return 0;
        for (k = 1; k < len; ++k) {
            if ((p[k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[k] & 0x3Fu);
        }
        if (cp < (len == 2 ? 0x80ul : len == 3 ? 0x800ul : 0x10000ul) || cp > 0x10FFFFul ||
            (cp >= 0xD800ul && cp <= 0xDFFFul)) return 0;
        p += len;
    }
    return 1;
}

/* A path that is not UTF-8 (Linux file names are bytes): the message escapes what is not UTF-8. */
static void test_messages_are_utf8(void) {
    limn_model* model = NULL;
    limn_model_options o = cpu_options();
    CHECK(limn_model_load("/nonexistent/caf\xe9-\xff.pt", &o, &model) == LIMN_ERR_IO);
    CHECK(is_utf8(limn_last_error()));
    CHECK(strstr(limn_last_error(), "caf\\xe9-\\xff.pt") != NULL);
    CHECK(model == NULL);
}

/* limn_cartoonize_options as limn.h declared it before the compound-stylization fields: what a
 * program built against that header holds on its stack. */
typedef struct cartoonize_options_v0 {
    size_t struct_size;
    float strength;
    int32_t max_side;
    int32_t tile_size;
    uint64_t memory_budget;
    uint32_t timeout_ms;
    limn_progress_callback progress;
    void* progress_user_data;
} cartoonize_options_v0;

/* limn_model_info before precision_note, role and crop_size. */
typedef struct model_info_v0 {
    size_t struct_size;
    limn_model_kind kind;
    int32_t format_version;
    char name[128];
    char device[32];
    limn_precision precision;
    int32_t size_multiple;
    int32_t fixed_width;
    int32_t fixed_height;
    int32_t tile_margin;
    int32_t has_face_template;
    float face_template[10];
    char source[256];
    char license[256];
    char format[16];
    int32_t min_width;
    int32_t min_height;
} model_info_v0;

static int all_bytes_are(const unsigned char* p, size_t n, unsigned char value) {
    size_t i;
    for (i = 0; i < n; ++i)
        if (p[i] != value) return 0;
    return 1;
}

/* A program built against an older, smaller struct: the library writes no byte past it, reads
 * no byte past it, and defaults the fields the program does not know. A newer, larger struct: the
 * library zeroes what it does not know and refuses a request it cannot honour. */
static void test_growable_structs(void) {
    union {
        cartoonize_options_v0 v0;
        unsigned char bytes[sizeof(limn_cartoonize_options) + 64];
    } old_options;
    union {
        model_info_v0 v0;
        unsigned char bytes[sizeof(limn_model_info) + 64];
    } old_info;
    union {
        limn_cartoonize_options now;
        unsigned char bytes[sizeof(limn_cartoonize_options) + 32];
    } new_options;
    limn_model_options mo = cpu_options();
    limn_model* model = NULL;
    limn_image* img = NULL;
    limn_pipeline_stats stats;

    memset(&old_options, 0xAB, sizeof old_options);
    CHECK(limn_cartoonize_options_init_sized((limn_cartoonize_options*)&old_options, sizeof(cartoonize_options_v0)) ==
          LIMN_OK);
    CHECK(old_options.v0.struct_size == sizeof(cartoonize_options_v0));
    CHECK(old_options.v0.strength == 1.0f && old_options.v0.tile_size == 0 && old_options.v0.progress == NULL);
    CHECK(all_bytes_are(old_options.bytes + sizeof(cartoonize_options_v0),
                        sizeof old_options - sizeof(cartoonize_options_v0), 0xAB));

    CHECK(limn_model_load(fixture("tiny_unet.pt"), &mo, &model) == LIMN_OK);
    CHECK(limn_image_alloc(24, 20, LIMN_PIXEL_RGB8, &img) == LIMN_OK);
    old_options.v0.strength = 0.5f;
    stats.struct_size = sizeof stats;
    /* The bytes past the old struct are garbage (0xAB) and must not be read as head_model etc. */
    CHECK(limn_cartoonize(model, img, img, (const limn_cartoonize_options*)&old_options, &stats) == LIMN_OK);
    CHECK(stats.tiles == 1 && stats.faces_found == 0);

    memset(&old_info, 0xCD, sizeof old_info);
    old_info.v0.struct_size = sizeof(model_info_v0);
    CHECK(limn_model_get_info(model, (limn_model_info*)&old_info) == LIMN_OK);
    CHECK(old_info.v0.kind == LIMN_MODEL_KIND_CARTOON && strcmp(old_info.v0.format, "torchscript") == 0);
    CHECK(old_info.v0.struct_size == sizeof(model_info_v0));
    CHECK(all_bytes_are(old_info.bytes + sizeof(model_info_v0), sizeof old_info - sizeof(model_info_v0), 0xCD));

    /* A newer limn.h: its extra fields come back zero from init and from get_info... */
    memset(&new_options, 0xEF, sizeof new_options);
    CHECK(limn_cartoonize_options_init_sized(&new_options.now, sizeof new_options) == LIMN_OK);
    CHECK(new_options.now.struct_size == sizeof new_options && new_options.now.working_size == 720);
    CHECK(all_bytes_are(new_options.bytes + sizeof(limn_cartoonize_options), 32, 0));
    CHECK(limn_cartoonize(model, img, img, &new_options.now, NULL) == LIMN_OK);
    memset(&old_info, 0xCD, sizeof old_info);
    old_info.v0.struct_size = sizeof old_info;
    CHECK(limn_model_get_info(model, (limn_model_info*)&old_info) == LIMN_OK);
    CHECK(all_bytes_are(old_info.bytes + sizeof(limn_model_info), 64, 0));
    /* ... and one set to something this library cannot do is refused, not ignored. */
    new_options.bytes[sizeof(limn_cartoonize_options) + 5] = 1;
    CHECK_ERR(limn_cartoonize(model, img, img, &new_options.now, NULL), LIMN_ERR_UNSUPPORTED, "does not know");

    CHECK_ERR(limn_cartoonize_options_init_sized(NULL, sizeof(limn_cartoonize_options)), LIMN_ERR_INVALID_ARGUMENT,
              "options");
    CHECK_ERR(limn_model_options_init_sized(&mo, 3), LIMN_ERR_INVALID_ARGUMENT, "struct_size");
    CHECK(strcmp(mo.device, "cpu") == 0); /* untouched */
    old_options.v0.struct_size = (size_t)1 << 40;
    CHECK_ERR(limn_cartoonize(model, img, img, (const limn_cartoonize_options*)&old_options, NULL),
              LIMN_ERR_INVALID_ARGUMENT, "struct_size");
    limn_image_free(img);
    limn_model_free(model);
}

/* Values C may put in an enum that the enum does not name: refused or answered, never used. */
static void test_enum_values(void) {
    limn_image* img = NULL;
    limn_image bad;
    limn_image* out = (limn_image*)0x1;
    limn_model_options mo = cpu_options();
    limn_model* model = (limn_model*)0x1;
    limn_image_save_options so;
    void* data = NULL;
    size_t size = 0;

    CHECK(limn_pixel_format_channels((limn_pixel_format)99) == 0);
    CHECK(limn_pixel_format_bytes_per_pixel((limn_pixel_format)-1) == 0);
    CHECK(limn_pixel_format_bytes_per_pixel(LIMN_PIXEL_RGBA32F) == 16);
    CHECK(strcmp(limn_status_string((limn_status)-3), "unknown status") == 0);
    CHECK(strcmp(limn_precision_name(LIMN_PRECISION_FP16), "fp16") == 0);
    CHECK(strcmp(limn_precision_name(LIMN_PRECISION_TF32), "tf32") == 0);
    CHECK(limn_precision_name((limn_precision)5) == NULL);
    CHECK(strcmp(limn_model_kind_name(LIMN_MODEL_KIND_FACE_RESTORE), "face_restore") == 0);
    CHECK(limn_model_kind_name((limn_model_kind)99) == NULL);

    CHECK_ERR(limn_image_alloc(4, 4, (limn_pixel_format)99, &img), LIMN_ERR_INVALID_ARGUMENT, "99");
    CHECK(img == NULL);
    CHECK(limn_image_alloc(4, 4, LIMN_PIXEL_RGB8, &img) == LIMN_OK);
    bad = *img;
    bad.format = (limn_pixel_format)99;
    CHECK_ERR(limn_image_save("unused.png", &bad, NULL), LIMN_ERR_INVALID_ARGUMENT, "pixel format 99");
    limn_image_save_options_init(&so);
    so.file_format = (limn_file_format)77;
    CHECK_ERR(limn_image_encode(img, &so, &data, &size), LIMN_ERR_INVALID_ARGUMENT, "file_format 77");
    mo.precision = (limn_precision)42;
    CHECK_ERR(limn_model_load(fixture("tiny_unet.pt"), &mo, &model), LIMN_ERR_INVALID_ARGUMENT, "precision 42");
    mo = cpu_options();
    mo.expected_kind = (limn_model_kind)-1;
    CHECK_ERR(limn_model_load(fixture("tiny_unet.pt"), &mo, &model), LIMN_ERR_INVALID_ARGUMENT, "expected_kind -1");
    CHECK(model == (limn_model*)0x1);
    mo = cpu_options();
    CHECK(limn_model_load(fixture("tiny_unet.pt"), &mo, &model) == LIMN_OK);
    CHECK_ERR(limn_model_run_alloc(model, img, (limn_pixel_format)7, &out), LIMN_ERR_INVALID_ARGUMENT, "7");
    CHECK_ERR(limn_model_run(model, &bad, img), LIMN_ERR_INVALID_ARGUMENT, "pixel format 99");
    /* Rows 2^62 bytes apart: the size fits in 64 bits, the memory in no machine (it crashed). */
    bad = *img;
    bad.height = 2;
    bad.stride = ((size_t)1 << 62) - 15;
    CHECK_ERR(limn_cartoonize(model, &bad, &bad, NULL, NULL), LIMN_ERR_INVALID_ARGUMENT, "past any memory");
    CHECK(out == (limn_image*)0x1);
    limn_model_free(model);
    limn_image_free(img);
}

/* ICC profiles: found in what limn wrote, in every format that can hold one. */
static void test_icc_profiles(void) {
    static const limn_file_format formats[] = {LIMN_FILE_FORMAT_PNG, LIMN_FILE_FORMAT_JPEG, LIMN_FILE_FORMAT_WEBP,
                                               LIMN_FILE_FORMAT_BMP};
    unsigned char profile[70000]; /* over one JPEG APP2 segment */
    limn_image* img = NULL;
    limn_image_save_options so;
    size_t i, k;

    for (i = 0; i < sizeof profile; ++i) profile[i] = (unsigned char)(i * 31 + i / 256);
    /* An ICC header's size (big-endian) and signature: what the library checks. */
    profile[0] = 0;
    profile[1] = (unsigned char)(sizeof profile >> 16);
    profile[2] = (unsigned char)(sizeof profile >> 8);
    profile[3] = (unsigned char)(sizeof profile);
    memcpy(profile + 36, "acsp", 4);
    CHECK(limn_image_alloc(9, 7, LIMN_PIXEL_RGBA8, &img) == LIMN_OK);
    for (i = 0; i < 9 * 7 * 4; ++i) img->data[i] = (uint8_t)(i * 5);
    for (k = 0; k < sizeof formats / sizeof formats[0]; ++k) {
        void* data = NULL;
        void* found = (void*)0x1;
        size_t size = 0, found_size = 7;
        limn_image* back = NULL;
        limn_image_save_options_init(&so);
        so.file_format = formats[k];
        so.jpeg_quality = 100;
        so.icc_profile = profile;
        so.icc_profile_size = sizeof profile;
        if (limn_image_encode(img, &so, &data, &size) != LIMN_OK) {
            CHECK(formats[k] == LIMN_FILE_FORMAT_WEBP && strstr(limn_last_error(), "libwebp") != NULL);
            continue;
        }
        CHECK(limn_image_read_icc_profile_from_memory(data, size, &found, &found_size) == LIMN_OK);
        if (formats[k] == LIMN_FILE_FORMAT_BMP) {
            CHECK(found == NULL && found_size == 0);
        } else {
            CHECK(found_size == sizeof profile && found && memcmp(found, profile, sizeof profile) == 0);
        }
        /* The pixels are as without a profile. */
        CHECK(limn_image_load_from_memory(data, size, NULL, &back) == LIMN_OK);
        CHECK(back->width == 9 && back->height == 7);
        if (formats[k] == LIMN_FILE_FORMAT_PNG) CHECK(memcmp(back->data, img->data, 9 * 7 * 4) == 0);
        limn_image_free(back);
        limn_buffer_free(found);
        limn_buffer_free(data);
    }
    limn_image_save_options_init(&so);
    so.file_format = LIMN_FILE_FORMAT_PNG;
    so.icc_profile_size = 10;
    {
        void* data = (void*)0x1;
        size_t size = 0;
        CHECK_ERR(limn_image_encode(img, &so, &data, &size), LIMN_ERR_INVALID_ARGUMENT, "icc_profile");
        CHECK(data == (void*)0x1);
        CHECK_ERR(limn_image_read_icc_profile("/nonexistent/a.jpg", &data, &size), LIMN_ERR_IO, "/nonexistent/a.jpg");
        CHECK_ERR(limn_image_read_icc_profile_from_memory(profile, 10, NULL, &size), LIMN_ERR_INVALID_ARGUMENT,
                  "profile");
    }
    /* Bytes that are not a profile are refused, naming why. */
    limn_image_save_options_init(&so);
    so.file_format = LIMN_FILE_FORMAT_PNG;
    so.icc_profile = "garbage";
    so.icc_profile_size = 7;
    {
        void* data = (void*)0x1;
        size_t size = 3;
        CHECK_ERR(limn_image_encode(img, &so, &data, &size), LIMN_ERR_INVALID_ARGUMENT, "128-byte header");
        CHECK(data == (void*)0x1 && size == 3);
    }
    limn_image_free(img);
}

/* The name tables: every layer takes its names from here (issue 23). */
static void test_names(void) {
    int32_t v = -7;
    size_t i, n = 0;
    const char* name;
    CHECK(strcmp(limn_name(LIMN_NAMES_PRECISION, LIMN_PRECISION_BF16), "bf16") == 0);
    CHECK(strcmp(limn_name(LIMN_NAMES_MODEL_KIND, LIMN_MODEL_KIND_FACE_RESTORE), "face_restore") == 0);
    CHECK(strcmp(limn_name(LIMN_NAMES_FILE_FORMAT, LIMN_FILE_FORMAT_JPEG), "jpeg") == 0);
    CHECK(strcmp(limn_name(LIMN_NAMES_PIXEL_FORMAT, LIMN_PIXEL_RGBA32F), "rgba32f") == 0);
    CHECK(strcmp(limn_name(LIMN_NAMES_STATUS, LIMN_ERR_OUT_OF_MEMORY), "out_of_memory") == 0);
    CHECK(strcmp(limn_name(LIMN_NAMES_MODEL_ROLE, LIMN_MODEL_ROLE_HEAD), "head") == 0);
    CHECK(strcmp(limn_name(LIMN_NAMES_TABLES, LIMN_NAMES_PIXEL_FORMAT), "pixel_format") == 0);
    CHECK(limn_name(LIMN_NAMES_PRECISION, 99) == NULL && limn_name((limn_name_table)99, 0) == NULL);
    CHECK(limn_name_value(LIMN_NAMES_FILE_FORMAT, "jpg", &v) == LIMN_OK && v == LIMN_FILE_FORMAT_JPEG);
    CHECK(limn_name_value(LIMN_NAMES_PRECISION, "tf32", &v) == LIMN_OK && v == LIMN_PRECISION_TF32);
    v = -7;
    CHECK_ERR(limn_name_value(LIMN_NAMES_PRECISION, "fp8", &v), LIMN_ERR_INVALID_ARGUMENT, "fp32, fp16, bf16 or tf32");
    CHECK_ERR(limn_name_value((limn_name_table)99, "png", &v), LIMN_ERR_INVALID_ARGUMENT, "table 99");
    CHECK_ERR(limn_name_value(LIMN_NAMES_PRECISION, NULL, &v), LIMN_ERR_INVALID_ARGUMENT, "name");
    CHECK(v == -7);
    /* Every status is named, in value order, and limn_status_string's text comes from the same table. */
    for (i = 0; (name = limn_names_entry(LIMN_NAMES_STATUS, i, &v)) != NULL; ++i) {
        CHECK(v == (int32_t)i && strcmp(limn_name(LIMN_NAMES_STATUS, v), name) == 0);
        CHECK(strcmp(limn_status_string((limn_status)v), "unknown status") != 0);
        ++n;
    }
    CHECK(n == LIMN_ERR_INVALID_IMAGE + 1);
    /* Other spellings follow the entries: "jpg" after webp. */
    for (i = 0; limn_names_entry(LIMN_NAMES_FILE_FORMAT, i, NULL) != NULL; ++i) name = limn_names_entry(LIMN_NAMES_FILE_FORMAT, i, &v);
    CHECK(strcmp(name, "jpg") == 0 && v == LIMN_FILE_FORMAT_JPEG);
}

/* Models by name: limn_model_path and the cache (issue 23). */
static void test_model_names(void) {
    char out[4096], tiny[8];
    CHECK(setenv("LIMN_HOME", "/nonexistent/limn-home", 1) == 0);
    CHECK(limn_model_path(fixture("tiny_unet.pt"), out, sizeof out) == LIMN_OK);
    CHECK(strcmp(out, fixture("tiny_unet.pt")) == 0);                  /* a file: itself */
    CHECK(limn_model_path("Not a name.pt", out, sizeof out) == LIMN_OK); /* not a name: itself */
    CHECK(strcmp(out, "Not a name.pt") == 0);
    CHECK_ERR(limn_model_path("nosuch", out, sizeof out), LIMN_ERR_IO, "limn models fetch nosuch");
    CHECK(strstr(limn_last_error(), "/nonexistent/limn-home/models") != NULL);
    CHECK_ERR(limn_model_path(fixture("tiny_unet.pt"), tiny, sizeof tiny), LIMN_ERR_INVALID_ARGUMENT, "out_size");
    CHECK_ERR(limn_model_path(NULL, out, sizeof out), LIMN_ERR_INVALID_ARGUMENT, "source");
    CHECK(unsetenv("LIMN_HOME") == 0);
}

/* The option checks a wrapper calls before loading a model refuse what the pipelines refuse, naming
 * the field and range, and pass the defaults. */
static void test_option_checks(void) {
    limn_cartoonize_options c;
    limn_detect_faces_options d;
    limn_restore_faces_options r;
    limn_image_save_options s;
    CHECK(limn_cartoonize_options_init(&c) == LIMN_OK && limn_cartoonize_options_check(&c) == LIMN_OK);
    CHECK(limn_detect_faces_options_init(&d) == LIMN_OK && limn_detect_faces_options_check(&d) == LIMN_OK);
    CHECK(limn_restore_faces_options_init(&r) == LIMN_OK && limn_restore_faces_options_check(&r) == LIMN_OK);
    CHECK(limn_image_save_options_init(&s) == LIMN_OK && limn_image_save_options_check(&s) == LIMN_OK);
    c.strength = 1.5f;
    CHECK_ERR(limn_cartoonize_options_check(&c), LIMN_ERR_INVALID_ARGUMENT, "invalid strength 1.5: expected 0..1");
    c.strength = 1.0f;
    c.feather = 0.75f;
    CHECK_ERR(limn_cartoonize_options_check(&c), LIMN_ERR_INVALID_ARGUMENT, "invalid feather 0.75: expected 0..0.5");
    c.feather = 0.1f;
    c.face_count = 2; /* faces NULL */
    CHECK_ERR(limn_cartoonize_options_check(&c), LIMN_ERR_INVALID_ARGUMENT, "face_count is 2");
    d.score_threshold = NAN;
    CHECK_ERR(limn_detect_faces_options_check(&d), LIMN_ERR_INVALID_ARGUMENT, "invalid score_threshold nan");
    r.min_face_size = -1.0f;
    CHECK_ERR(limn_restore_faces_options_check(&r), LIMN_ERR_INVALID_ARGUMENT, "invalid min_face_size -1");
    s.jpeg_quality = 0;
    CHECK_ERR(limn_image_save_options_check(&s), LIMN_ERR_INVALID_ARGUMENT, "invalid jpeg_quality 0: expected 1..100");
    CHECK_ERR(limn_cartoonize_options_check(NULL), LIMN_ERR_INVALID_ARGUMENT, "options");
}

/* limn_file_write: the bytes land whole under the name, a failure names the path and leaves nothing. */
static void test_file_write(void) {
    char folder[] = "/tmp/limn-file-write-XXXXXX", path[4200], back[16] = {0};
    CHECK(mkdtemp(folder) != NULL);
    snprintf(path, sizeof path, "%s/out.bin", folder);
    CHECK(limn_file_write(path, "hello", 5) == LIMN_OK);
    FILE* f = fopen(path, "rb");
    CHECK(f != NULL && fread(back, 1, sizeof back, f) == 5 && memcmp(back, "hello", 5) == 0);
    if (f) fclose(f);
    CHECK(limn_file_write(path, NULL, 0) == LIMN_OK); /* empty: replaces it */
    f = fopen(path, "rb");
    CHECK(f != NULL && fread(back, 1, sizeof back, f) == 0);
    if (f) fclose(f);
    CHECK_ERR(limn_file_write(path, NULL, 3), LIMN_ERR_INVALID_ARGUMENT, "data");
    CHECK_ERR(limn_file_write("/nonexistent/dir/out.bin", "x", 1), LIMN_ERR_IO, "cannot write '/nonexistent/dir/out.bin'");
    CHECK_ERR(limn_file_write("", "x", 1), LIMN_ERR_INVALID_ARGUMENT, "empty path");
    CHECK(remove(path) == 0 && rmdir(folder) == 0); /* no temporary file left beside it */
}

/* Device images from C: a CUDA place for a model on the CPU is refused before any pixel is read,
 * "cpu" is host memory, and a place that is none is named. */
static void test_device_images(void) {
    limn_model_options mo = cpu_options();
    limn_model* model = NULL;
    limn_cartoonize_options co;
    limn_run_options ro;
    limn_job* job = NULL;
    limn_image* img = NULL;
    CHECK(limn_model_load(fixture("identity.pt"), &mo, &model) == LIMN_OK);
    CHECK(limn_image_alloc(40, 24, LIMN_PIXEL_RGBA8, &img) == LIMN_OK);
    CHECK(limn_cartoonize_options_init(&co) == LIMN_OK);
    CHECK(co.images_device == NULL && co.cuda_stream == NULL); /* host memory, limn's streams */
    co.images_device = "cuda:0";
    CHECK_ERR(limn_cartoonize(model, img, img, &co, NULL), LIMN_ERR_INVALID_ARGUMENT,
              "images_device is 'cuda:0', but model");
    co.images_device = "cpu";
    CHECK(limn_cartoonize(model, img, img, &co, NULL) == LIMN_OK);
    co.images_device = "vram";
    CHECK_ERR(limn_cartoonize_options_check(&co), LIMN_ERR_INVALID_ARGUMENT,
              "options->images_device 'vram' is not a place for images");
    co.images_device = NULL;
    co.cuda_stream = &co; /* not a stream: refused for a CPU model before any use */
    CHECK_ERR(limn_cartoonize(model, img, img, &co, NULL), LIMN_ERR_INVALID_ARGUMENT, "cuda_stream is set, but model");
    /* The raw run takes them in limn_run_options. */
    CHECK(limn_run_options_init(&ro) == LIMN_OK && ro.images_device == NULL && ro.cuda_stream == NULL);
    CHECK(limn_model_run_with(model, img, img, 1, &ro) == LIMN_OK);
    CHECK(limn_model_run_with(model, img, img, 1, NULL) == LIMN_OK);
    ro.images_device = "cuda";
    CHECK_ERR(limn_model_run_with(model, img, img, 1, &ro), LIMN_ERR_INVALID_ARGUMENT, "images_device is 'cuda', but model");
    CHECK_ERR(limn_model_run_with_submit(model, img, img, 1, &ro, NULL, &job), LIMN_ERR_INVALID_ARGUMENT,
              "images_device is 'cuda', but model");
    CHECK(job == NULL);
    CHECK_ERR(limn_model_run_with(model, img, img, 0, NULL), LIMN_ERR_INVALID_ARGUMENT, "image count is 0");
    { /* a batch of two sizes: refused at submit, as the run would refuse it (no job) */
        limn_image pair[2];
        pair[0] = *img;
        pair[1] = *img;
        pair[1].width = 20;
        CHECK_ERR(limn_model_run_with_submit(model, pair, pair, 2, NULL, NULL, &job), LIMN_ERR_INVALID_ARGUMENT,
                  "every image of a batch must have input[0]'s size");
        CHECK(job == NULL);
    }
    limn_image_free(img);
    limn_model_free(model);
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR\n", argv[0]);
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    test_versions();
    test_null_arguments();
    test_devices();
    test_memory();
    test_bad_models();
    test_run();
    test_load_from_memory();
    test_compiled_package();
    test_files_and_pipelines();
    test_messages_are_utf8();
    test_growable_structs();
    test_enum_values();
    test_icc_profiles();
    test_names();
    test_model_names();
    test_option_checks();
    test_file_write();
    test_device_images();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
