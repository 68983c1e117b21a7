/* frame_loop.c: how a game or avatar engine embeds limn. One model stays loaded; RGBA frames
 * (here generated, in an engine the camera or a render target) are cartoonized every frame under
 * a device memory cap.
 *
 *     limn-engine-loop [--async | --device] MODEL [DEVICE] [FRAMES] [WIDTH] [HEIGHT] [MEMORY_CAP_MIB]
 *                      [PRECISION]
 *
 * Synchronous (the default): each frame is cartoonized in place by limn_frames_run, which blocks
 * the engine's thread for the whole call; each frame's time is printed.
 *
 * --async: the engine never waits for limn. It renders into one of two buffers while the job of
 * the other runs on limn's worker pool (limn_frames_submit): each engine frame it looks at the
 * running job (limn_job_wait with timeout 0), presents its result once it has ended and submits the
 * newest frame. It prints how long its thread was inside limn per engine frame (submit and poll),
 * against the synchronous call's time, and how many engine frames it rendered per cartoonized one.
 *
 * --device (a CUDA DEVICE; built with the CUDA runtime): the frames never leave the GPU. The frame
 * is a pitched CUDA buffer (cudaMallocPitch, as a texture's memory) that the engine "renders" on
 * its own stream (a fill, standing in for the engine's kernels); limn cartoonizes it in place,
 * queued on that stream (images_device and cuda_stream), and the engine's thread goes on at once:
 * no host copy and no host wait inside limn. The engine waits for its stream once per frame, at
 * "present" (as a swap chain would), which the frame rate includes.
 *
 * All loops run the model prepared for the frame size (limn_frames): once warm, a frame takes no
 * memory from the system, which the "allocations" line shows. The engine owns the frame buffers;
 * limn reads and writes them (alpha untouched). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <limn/limn.h>

#if LIMN_EXAMPLE_CUDA
#include <cuda_runtime_api.h>
#endif

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

/* The synchronous loop: every frame blocks the engine for the whole call. */
static int run_sync(limn_frames* stream, uint8_t* frame, int w, int h, int frames, double* blocked) {
    limn_image img = {frame, w, h, (size_t)w * 4, LIMN_PIXEL_RGBA8};
    for (int i = 0; i < frames; ++i) {
        render_frame(frame, w, h, i);
        const double t0 = now_seconds();
        if (limn_frames_run(stream, &img, &img) != LIMN_OK) {
            fprintf(stderr, "frame %d: %s\n", i, limn_last_error());
            return 1;
        }
        blocked[i] = now_seconds() - t0;
        printf("frame %d: %.2f ms\n", i, blocked[i] * 1e3);
    }
    return 0;
}

/* The asynchronous loop: two buffers, one being rendered while limn works on the other. Stops once
 * `frames` results are presented; *engine_frames counts the frames rendered meanwhile, blocked[]
 * the time the engine spent inside limn during each of them, and submits[] each submit's time. */
static int run_async(limn_frames* stream, uint8_t* buffers[2], int w, int h, int frames, double* blocked,
                     int max_engine_frames, int* engine_frames, double* submits) {
    limn_job* job = NULL;
    int presented = 0, in_flight = -1, i = 0;
    for (; presented < frames && i < max_engine_frames; ++i) {
        const int mine = in_flight == 0 ? 1 : 0; /* the buffer limn is not working on */
        render_frame(buffers[mine], w, h, i);
        const double t0 = now_seconds();
        if (job) {
            limn_status job_status = LIMN_OK;
            const limn_status s = limn_job_wait(job, 0, &job_status);
            if (s == LIMN_OK) { /* ended: its buffer holds the cartoon, ready to present */
                if (job_status != LIMN_OK) {
                    fprintf(stderr, "frame %d: %s\n", presented, limn_job_message(job));
                    limn_job_free(job);
                    return 1;
                }
                limn_job_free(job);
                job = NULL;
                in_flight = -1;
                ++presented;
            } else if (s != LIMN_ERR_TIMEOUT) {
                fprintf(stderr, "poll: %s\n", limn_last_error());
                limn_job_free(job);
                return 1;
            }
        }
        if (!job && presented < frames) { /* the newest frame goes to limn; rendering goes on */
            limn_image img = {buffers[mine], w, h, (size_t)w * 4, LIMN_PIXEL_RGBA8};
            const double s0 = now_seconds();
            if (limn_frames_submit(stream, &img, &img, NULL, &job) != LIMN_OK) {
                fprintf(stderr, "submit: %s\n", limn_last_error());
                return 1;
            }
            submits[presented] = now_seconds() - s0;
            in_flight = mine;
        }
        blocked[i] = now_seconds() - t0;
    }
    if (job) { /* out of engine frames: wait for the last one rather than leave it running */
        limn_status job_status = LIMN_OK;
        if (limn_job_wait(job, -1, &job_status) != LIMN_OK || job_status != LIMN_OK) {
            fprintf(stderr, "last frame: %s\n", limn_job_message(job));
        }
        limn_job_free(job);
    }
    *engine_frames = i;
    return presented == frames ? 0 : 1;
}

#if LIMN_EXAMPLE_CUDA
/* The device loop: one pitched RGBA buffer in CUDA memory, rendered and cartoonized in place on the
 * engine's stream. blocked[] is the time inside limn_frames_run (queueing the work), frame_times[]
 * the time from that call to the frame's present. */
static int run_device(limn_frames* stream, uint8_t* frame, size_t pitch, cudaStream_t engine, int w, int h,
                      int frames, double* blocked, double* frame_times) {
    limn_image img = {frame, w, h, pitch, LIMN_PIXEL_RGBA8};
    for (int i = 0; i < frames; ++i) {
        /* "Render": the engine's own work on its stream (a fill of this frame's gray). */
        cudaError_t err = cudaMemset2DAsync(frame, pitch, (i * 8) & 255, (size_t)w * 4, (size_t)h, engine);
        const double t0 = now_seconds();
        if (err == cudaSuccess && limn_frames_run(stream, &img, &img) != LIMN_OK) {
            fprintf(stderr, "frame %d: %s\n", i, limn_last_error());
            return 1;
        }
        blocked[i] = now_seconds() - t0;
        if (err == cudaSuccess) err = cudaStreamSynchronize(engine); /* "present" */
        if (err != cudaSuccess) {
            fprintf(stderr, "frame %d: %s\n", i, cudaGetErrorString(err));
            return 1;
        }
        frame_times[i] = now_seconds() - t0;
    }
    return 0;
}
#endif

static int compare_doubles(const void* a, const void* b) {
    const double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
    const int async = argc > 1 && strcmp(argv[1], "--async") == 0;
    const int on_device = argc > 1 && strcmp(argv[1], "--device") == 0;
    argc -= async + on_device;
    argv += async + on_device;
    if (argc < 2) {
        fprintf(stderr, "usage: limn-engine-loop [--async | --device] MODEL [DEVICE] [FRAMES] [WIDTH] [HEIGHT] "
                        "[MEMORY_CAP_MIB] [PRECISION]\n");
        return 2;
    }
    const char* device = argc > 2 ? argv[2] : "auto";
    const int frames = argc > 3 ? atoi(argv[3]) : 10;
    const int w = argc > 4 ? atoi(argv[4]) : 320, h = argc > 5 ? atoi(argv[5]) : 240;
    const uint64_t cap_mib = argc > 6 ? (uint64_t)atoll(argv[6]) : 1024;
    /* PRECISION: a precision's name ("auto", "fp32", "fp16", ...); AUTO by default. */
    int32_t precision = LIMN_PRECISION_AUTO;
    if (argc > 7 && limn_name_value(LIMN_NAMES_PRECISION, argv[7], &precision) != LIMN_OK) {
        fprintf(stderr, "PRECISION: %s\n", limn_last_error());
        return 2;
    }
    if (frames < 1 || frames > 100000 || w < 1 || h < 1) {
        fprintf(stderr, "frames (at most 100000), width and height must be positive\n");
        return 2;
    }
#if !LIMN_EXAMPLE_CUDA
    if (on_device) {
        fprintf(stderr, "--device: this limn-engine-loop was built without the CUDA runtime\n");
        return 2;
    }
#endif

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
    if (on_device && strncmp(resolved, "cuda", 4) != 0) {
        fprintf(stderr, "--device: frames in CUDA memory need a CUDA device, and DEVICE is %s\n", resolved);
        return 2;
    }
    limn_model_options opts;
    limn_model_options_init(&opts);
    opts.device = resolved;
    opts.precision = (limn_precision)precision;
    opts.expected_kind = LIMN_MODEL_KIND_CARTOON;
    limn_model* model = NULL;
    if (limn_model_load(argv[1], &opts, &model) != LIMN_OK) {
        fprintf(stderr, "load: %s\n", limn_last_error());
        return 1;
    }
    limn_cartoonize_options co;
    limn_cartoonize_options_init(&co);
    co.memory_budget = cap_mib << 20;
#if LIMN_EXAMPLE_CUDA
    /* --device: the frame buffer and the engine's stream; limn's work is queued on that stream. */
    uint8_t* device_frame = NULL;
    size_t pitch = 0;
    cudaStream_t engine = NULL;
    if (on_device) {
        cudaError_t err = cudaSetDevice(atoi(resolved + 5)); /* "cuda:N" */
        if (err == cudaSuccess) err = cudaMallocPitch((void**)&device_frame, &pitch, (size_t)w * 4, (size_t)h);
        if (err == cudaSuccess) err = cudaStreamCreateWithFlags(&engine, cudaStreamNonBlocking);
        if (err != cudaSuccess) {
            fprintf(stderr, "CUDA: %s\n", cudaGetErrorString(err));
            limn_model_free(model);
            return 1;
        }
        co.images_device = resolved;
        co.cuda_stream = engine;
    }
#endif

    const int max_engine_frames = 1 << 20; /* a bound on the async loop (8 MiB of times) */
    uint8_t* buffers[2] = {malloc((size_t)w * (size_t)h * 4), malloc((size_t)w * (size_t)h * 4)};
    double* blocked = malloc(sizeof(double) * (size_t)(async ? max_engine_frames : frames));
    double* submits = malloc(sizeof(double) * (size_t)frames);
    int status = buffers[0] && buffers[1] && blocked && submits ? 0 : 1;
    int engine_frames = frames;
    /* The model prepared for this frame size: it warms up here, and then a frame takes no memory
     * from the system (the allocations line below). */
    limn_frames* stream = NULL;
    if (status == 0 && limn_frames_create(model, w, h, LIMN_PIXEL_RGBA8, &co, &stream) != LIMN_OK) {
        fprintf(stderr, "frames: %s\n", limn_last_error());
        status = 1;
    }
    limn_memory_stats before, mem;
    before.struct_size = mem.struct_size = sizeof mem;
    if (status == 0 && limn_memory_get_stats(resolved, &before) != LIMN_OK) {
        fprintf(stderr, "memory statistics: %s\n", limn_last_error());
        status = 1;
    }
    const double start = now_seconds();
    if (status == 0) {
#if LIMN_EXAMPLE_CUDA
        if (on_device) {
            status = run_device(stream, device_frame, pitch, engine, w, h, frames, blocked, submits);
        } else
#endif
        status = async ? run_async(stream, buffers, w, h, frames, blocked, max_engine_frames, &engine_frames, submits)
                       : run_sync(stream, buffers[0], w, h, frames, blocked);
    }
    const double wall = now_seconds() - start;
    if (status == 0 && limn_memory_get_stats(resolved, &mem) == LIMN_OK) {
        double sum = 0.0;
        for (int i = 0; i < engine_frames; ++i) sum += blocked[i];
        qsort(blocked, (size_t)engine_frames, sizeof(double), compare_doubles);
        const double median = blocked[engine_frames / 2], worst = blocked[engine_frames - 1];
        limn_model_info info;
        info.struct_size = sizeof info;
        const char* precision =
            limn_model_get_info(model, &info) == LIMN_OK ? limn_precision_name(info.precision) : "?";
        printf("%d frames of %dx%d on %s in %s: %.2f ms per frame, peak %.1f MiB (cap %llu MiB)\n", frames, w, h,
               resolved, precision, wall * 1e3 / frames, (double)mem.peak_allocated / (1 << 20),
               (unsigned long long)cap_mib);
        printf("%s: the engine's thread was inside limn %.1f us per engine frame (median; mean %.1f us; worst %.1f "
               "us), %d engine frames rendered\n",
               on_device ? "device" : async ? "async" : "sync", median * 1e6, sum / engine_frames * 1e6,
               worst * 1e6, engine_frames);
        printf("allocations: %.2f per frame (%llu in %d frames)\n", (double)(mem.allocations - before.allocations) / frames,
               (unsigned long long)(mem.allocations - before.allocations), frames);
        if (on_device) { /* submits[] holds the frame times here */
            qsort(submits, (size_t)frames, sizeof(double), compare_doubles);
            printf("device: a frame took %.2f ms from limn's call to present (median), %.1f frames/s\n",
                   submits[frames / 2] * 1e3, 1.0 / submits[frames / 2]);
        }
        if (async) {
            qsort(submits, (size_t)frames, sizeof(double), compare_doubles);
            printf("async: a submit took %.1f us (median; the first, which starts the pool, %.1f us at most)\n",
                   submits[frames / 2] * 1e6, submits[frames - 1] * 1e6);
        }
    }
    free(blocked);
    free(submits);
    limn_frames_free(stream);
    free(buffers[0]);
    free(buffers[1]);
#if LIMN_EXAMPLE_CUDA
    if (engine) cudaStreamDestroy(engine);
    cudaFree(device_frame);
#endif
    limn_model_free(model);
    if (fflush(stdout) != 0) { /* the figures must reach their reader: a full disk is an error */
        perror("stdout");
        status = 1;
    }
    return status;
}
