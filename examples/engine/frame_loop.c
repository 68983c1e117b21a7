/* frame_loop.c: how a game or avatar engine embeds limn. One model stays loaded; RGBA frames
 * (here generated, in an engine the camera or a render target) are cartoonized in place every
 * frame under a device memory cap, and each frame's time is printed.
 *
 *     limn-engine-loop MODEL [DEVICE] [FRAMES] [WIDTH] [HEIGHT] [MEMORY_CAP_MIB]
 *
 * The engine owns the frame buffers; limn reads and writes them in place (alpha untouched). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <limn/limn.h>

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A moving test card: gradients and a circle, with a varying alpha channel. */
static void render_frame(uint8_t* rgba, int w, int h, int frame) {
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
            uint8_t* p = rgba + ((size_t)y * (size_t)w + (size_t)x) * 4;
            const double dx = x - (w / 2 + 40 * sin(frame * 0.3)), dy = y - h / 2;
            const int inside = dx * dx + dy * dy < (h / 4) * (h / 4);
            p[0] = (uint8_t)(inside ? 230 : (x * 255) / w);
            p[1] = (uint8_t)(inside ? 180 : (y * 255) / h);
            p[2] = (uint8_t)((frame * 8 + x + y) & 255);
            p[3] = (uint8_t)(x & 255);
        }
    }
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [DEVICE] [FRAMES] [WIDTH] [HEIGHT] [MEMORY_CAP_MIB]\n", argv[0]);
        return 2;
    }
    const char* device = argc > 2 ? argv[2] : "auto";
    const int frames = argc > 3 ? atoi(argv[3]) : 10;
    const int w = argc > 4 ? atoi(argv[4]) : 320, h = argc > 5 ? atoi(argv[5]) : 240;
    const uint64_t cap_mib = argc > 6 ? (uint64_t)atoll(argv[6]) : 1024;
    if (frames < 1 || w < 1 || h < 1) {
        fprintf(stderr, "frames, width and height must be positive\n");
        return 2;
    }

    char resolved[64];
    if (limn_device_resolve(device, resolved, sizeof resolved) != LIMN_OK) {
        fprintf(stderr, "device: %s\n", limn_last_error());
        return 1;
    }
    /* The cap bounds limn's allocations on the device; cartoonize tiles to stay inside it. */
    if (limn_memory_set_limit(resolved, cap_mib << 20) != LIMN_OK) {
        fprintf(stderr, "memory cap: %s\n", limn_last_error());
        return 1;
    }
    limn_model_options opts;
    limn_model_options_init(&opts);
    opts.device = resolved;
    opts.expected_kind = LIMN_MODEL_KIND_CARTOON;
    limn_model* model = NULL;
    if (limn_model_load(argv[1], &opts, &model) != LIMN_OK) {
        fprintf(stderr, "load: %s\n", limn_last_error());
        return 1;
    }
    limn_cartoonize_options co;
    limn_cartoonize_options_init(&co);
    co.memory_budget = cap_mib << 20;

    uint8_t* frame = malloc((size_t)w * (size_t)h * 4);
    if (!frame) {
        limn_model_free(model);
        return 1;
    }
    limn_image img = {frame, w, h, (size_t)w * 4, LIMN_PIXEL_RGBA8};
    int status = 0;
    double total = 0.0;
    for (int i = 0; i < frames && status == 0; ++i) {
        render_frame(frame, w, h, i);
        const double t0 = now_seconds();
        if (limn_cartoonize(model, &img, &img, &co, NULL) != LIMN_OK) {
            fprintf(stderr, "frame %d: %s\n", i, limn_last_error());
            status = 1;
            break;
        }
        const double dt = now_seconds() - t0;
        total += dt;
        printf("frame %d: %.2f ms\n", i, dt * 1e3);
    }
    limn_memory_stats mem;
    mem.struct_size = sizeof mem;
    if (status == 0 && limn_memory_get_stats(resolved, &mem) == LIMN_OK) {
        printf("%d frames of %dx%d on %s: %.2f ms per frame, peak %.1f MiB (cap %llu MiB)\n", frames, w, h, resolved,
               total * 1e3 / frames, (double)mem.peak_allocated / (1 << 20), (unsigned long long)cap_mib);
    }
    free(frame);
    limn_model_free(model);
    return status;
}
