/*
 * limn: portrait image models (cartoonization, face restoration) on CPU and CUDA.
 *
 * The stable C ABI of liblimn. C99; this header includes <stddef.h> and <stdint.h> only.
 *
 * Usage:
 *
 *     limn_model_options opts;
 *     limn_model_options_init(&opts);
 *     opts.device = "cuda";                 // or "cpu", "cuda:1", "auto"
 *     opts.precision = LIMN_PRECISION_FP16;
 *     limn_model* model = NULL;
 *     if (limn_model_load("cartoon.pt", &opts, &model) != LIMN_OK) {
 *         fprintf(stderr, "%s\n", limn_last_error());
 *         return 1;
 *     }
 *     limn_image in = {pixels, 512, 512, 512 * 3, LIMN_PIXEL_RGB8};
 *     limn_image out = {result, 512, 512, 512 * 3, LIMN_PIXEL_RGB8};
 *     limn_status st = limn_model_run(model, &in, &out);
 *     limn_model_free(model);
 *
 * Threads: every function may be called from any thread. One limn_model may be used by many
 * threads at once (runs on one handle execute concurrently); limn_model_free must not race with
 * other calls on the same handle. limn_last_error() is per thread. Memory limits and cached-block
 * release act on a whole device, for every model on it.
 *
 * CPU memory: when liblimn is loaded it sets THP_MEM_ALLOC_ENABLE=1 (unless the environment
 * already sets it, or LIMN_CPU_HUGE_PAGES=0), so LibTorch puts large CPU tensors on transparent
 * huge pages: a fifth less time on big images, spent otherwise in page faults.
 *
 * Growable structs: every struct that starts with `size_t struct_size` may gain fields at its
 * end in later versions; struct_size is always the caller's sizeof, so the library reads and
 * writes only the bytes the caller's limn.h declared. Options take defaults for fields the caller does not know
 * of; a field the library does not know of (a newer limn.h than the library) must be 0, else
 * LIMN_ERR_UNSUPPORTED. Fill options with limn_<struct>_init, an inline function that passes the
 * caller's sizeof to the library (never memset and assign struct_size by hand for options).
 *
 * Errors: every fallible call returns a limn_status. On failure, out-parameters are left
 * untouched and limn_last_error() describes what was wrong (naming the file, argument or device).
 */
#ifndef LIMN_LIMN_H
#define LIMN_LIMN_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(LIMN_BUILDING_LIBRARY)
#    define LIMN_API __declspec(dllexport)
#  else
#    define LIMN_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__)
#  define LIMN_API __attribute__((visibility("default")))
#else
#  define LIMN_API
#endif

/* On every function that returns a limn_status: ignoring the status draws a compiler warning. */
#if defined(__cplusplus) && __cplusplus >= 201703L
#  define LIMN_NODISCARD [[nodiscard]]
#elif defined(__GNUC__)
#  define LIMN_NODISCARD __attribute__((warn_unused_result))
#else
#  define LIMN_NODISCARD
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Versions ------------------------------------------------------------------------------ */

#define LIMN_VERSION_MAJOR 0
#define LIMN_VERSION_MINOR 1
#define LIMN_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH, as returned by limn_version_number(). */
#define LIMN_VERSION_NUMBER (LIMN_VERSION_MAJOR * 10000 + LIMN_VERSION_MINOR * 100 + LIMN_VERSION_PATCH)
#define LIMN_VERSION_STRING "0.1.0"
/* The ABI major version: the SONAME is liblimn.so.<LIMN_ABI_VERSION>. */
#define LIMN_ABI_VERSION 0

/* The version of the library actually loaded (compare with LIMN_VERSION_NUMBER). */
LIMN_API uint32_t limn_version_number(void);
/* Static string, e.g. "0.1.0". Never NULL. */
LIMN_API const char* limn_version_string(void);

/* Multi-line text: limn and LibTorch versions, CUDA compiled in, CUDA usable now, devices seen.
 * The string is owned by the library and valid until the program ends. Never NULL. */
LIMN_API const char* limn_build_info(void);

/* ---- Status codes -------------------------------------------------------------------------- */

/* Values never change meaning; new codes are only ever appended. */
typedef enum limn_status {
    LIMN_OK = 0,
    LIMN_ERR_INVALID_ARGUMENT = 1,   /* NULL pointer, bad option value, bad image description */
    LIMN_ERR_IO = 2,                 /* a file could not be opened, read or written */
    LIMN_ERR_INVALID_MODEL = 3,      /* not a model file, corrupt, truncated, bad metadata */
    LIMN_ERR_WRONG_MODEL_KIND = 4,   /* a valid model of another kind than the call needs */
    LIMN_ERR_DEVICE_UNAVAILABLE = 5, /* the device does not exist or cannot be used */
    LIMN_ERR_UNSUPPORTED = 6,        /* e.g. a precision the device cannot run */
    LIMN_ERR_OUT_OF_MEMORY = 7,      /* device or host memory exhausted; the model stays usable */
    LIMN_ERR_IMAGE_TOO_LARGE = 8,    /* more pixels than the configured limit */
    LIMN_ERR_SIZE_RULE = 9,          /* image size does not fit the model's size rule */
    LIMN_ERR_NON_FINITE = 10,        /* the network produced NaN or Inf */
    LIMN_ERR_CANCELLED = 11,         /* a progress callback asked to stop */
    LIMN_ERR_TIMEOUT = 12,           /* a deadline expired */
    LIMN_ERR_INTERNAL = 13,          /* anything else; the message says what */
    LIMN_ERR_INVALID_IMAGE = 14      /* an image file that is corrupt, truncated or of no known format */
} limn_status;

/* Static text naming the status, e.g. "out of memory". Never NULL (unknown codes included). */
LIMN_API const char* limn_status_string(limn_status status);

/* Detail of the last failure on the calling thread ("" if none). Owned by the library, valid
 * until the calling thread's next limn_* call. Never NULL. Always valid UTF-8: bytes that are not
 * (from file names or file contents) are written as \xNN. */
LIMN_API const char* limn_last_error(void);

/* ---- Devices ------------------------------------------------------------------------------- */
/* Device strings: "cpu", "cuda" (the current CUDA device, normally 0), "cuda:N", "auto" (the first
 * usable CUDA device, else the CPU). Asking for CUDA where none is usable is
 * LIMN_ERR_DEVICE_UNAVAILABLE, never a silent CPU fallback; only "auto" falls back. */

typedef enum limn_device_type {
    LIMN_DEVICE_CPU = 0,
    LIMN_DEVICE_CUDA = 1
} limn_device_type;

typedef struct limn_device_info {
    size_t struct_size;           /* set by the caller: sizeof(limn_device_info) */
    limn_device_type type;
    int32_t index;                /* CUDA ordinal; 0 for the CPU */
    char id[32];                  /* canonical device string: "cpu", "cuda:0", ... */
    char name[256];               /* e.g. "NVIDIA H100 80GB HBM3"; the CPU model for the CPU */
    uint64_t total_memory;        /* bytes (device memory, or physical RAM for the CPU) */
    uint64_t free_memory;         /* bytes free now (MemAvailable for the CPU) */
    int32_t compute_capability;   /* major * 10 + minor for CUDA; 0 for the CPU */
    int32_t multiprocessors;      /* CUDA SMs; logical cores for the CPU */
    char native_precisions[32];   /* computed in hardware, e.g. "fp32 bf16" (a CPU with AVX512-BF16
                                     or AMX-BF16), "fp32 fp16 bf16 tf32" (CUDA 8.0); others run
                                     emulated, many times slower */
    char auto_precision[8];       /* what LIMN_PRECISION_AUTO picks here before a model's own
                                     check: "fp32", "fp16" or "bf16" */
} limn_device_info;

/* 1 if at least one CUDA device can be used now, 0 otherwise. */
LIMN_API int32_t limn_cuda_available(void);

/* Number of devices: the CPU (index 0) followed by each usable CUDA device. */
LIMN_NODISCARD LIMN_API limn_status limn_device_count(int32_t* out_count);

/* Fills *out for device `index` (0 = CPU, 1 + N = "cuda:N"). out->struct_size must be set; only
 * that many bytes are written. */
LIMN_NODISCARD LIMN_API limn_status limn_device_get_info(int32_t index, limn_device_info* out);

/* Resolves a device string ("auto" included) to its canonical id ("cpu", "cuda:0", ...), written
 * NUL-terminated into out[0..out_size). Fails with LIMN_ERR_DEVICE_UNAVAILABLE for a CUDA device
 * that does not exist or is not usable. */
LIMN_NODISCARD LIMN_API limn_status limn_device_resolve(const char* device, char* out,
                                                        size_t out_size);

/* ---- Memory -------------------------------------------------------------------------------- */
/* On CUDA the caching allocator grows on demand; these calls cap, release and report it per
 * device. On the CPU the limit is a budget that limn's own work respects (e.g. tile sizes), not
 * an allocator cap; `allocated` counts the CPU tensors limn's calls allocate (models' weights and
 * the work in flight) and `reserved` is the process's resident memory. */

typedef struct limn_memory_stats {
    size_t struct_size;        /* set by the caller: sizeof(limn_memory_stats) */
    uint64_t allocated;        /* bytes in live tensors (on the CPU: those of limn's calls) */
    uint64_t reserved;         /* bytes held by the caching allocator (CUDA) / resident set (CPU) */
    uint64_t peak_allocated;   /* since start or the last limn_memory_reset_peak */
    uint64_t peak_reserved;    /* since start or the last limn_memory_reset_peak */
    uint64_t limit;            /* cap set by limn_memory_set_limit; 0 = none */
    uint64_t device_total;     /* device memory (CUDA) / physical RAM (CPU) */
    uint64_t device_free;      /* free now, as the driver / kernel reports it */
    uint64_t cached;           /* held unused for reuse: the CUDA caching allocator's blocks, the
                                  CPU arenas' (each model keeps its runs' memory between runs) */
    uint64_t allocations;      /* blocks of tensor memory limn's calls took from the system since
                                  start (CUDA: the caching allocator's device allocations; the
                                  CPU: tensors not served from an arena's unused blocks). Its
                                  growth over a run of frames is what each frame allocates */
} limn_memory_stats;

/* Caps the memory limn may use on `device` to `bytes` (0 removes the cap). On CUDA allocations
 * beyond the cap fail with LIMN_ERR_OUT_OF_MEMORY. A cap over the device's memory is an error. */
LIMN_NODISCARD LIMN_API limn_status limn_memory_set_limit(const char* device, uint64_t bytes);

/* Returns cached, unused blocks to the driver (CUDA) or the system (the CPU arenas, which keep a
 * model's run memory between runs: $LIMN_CPU_ARENA_MAX bytes at most each, by default the smaller
 * of 2 GiB and an eighth of the RAM, half the CPU limit where one is set; 0 turns them off). On
 * CUDA, LibTorch (2.11) releases the unused blocks of every device at once: it has no call for one
 * device. limn itself never calls it (not after an out-of-memory error either). */
LIMN_NODISCARD LIMN_API limn_status limn_memory_release_cached(const char* device);

/* Fills *out (out->struct_size must be set; only that many bytes are written). */
LIMN_NODISCARD LIMN_API limn_status limn_memory_get_stats(const char* device,
                                                          limn_memory_stats* out);

/* Resets the peak counters of `device` to the current values. */
LIMN_NODISCARD LIMN_API limn_status limn_memory_reset_peak(const char* device);

/* ---- Images -------------------------------------------------------------------------------- */

typedef enum limn_pixel_format {
    LIMN_PIXEL_RGB8 = 1,
    LIMN_PIXEL_RGBA8 = 2,
    LIMN_PIXEL_BGR8 = 3,
    LIMN_PIXEL_BGRA8 = 4,
    LIMN_PIXEL_RGB32F = 5,   /* 32-bit float per channel, nominal range [0, 1] */
    LIMN_PIXEL_RGBA32F = 6
} limn_pixel_format;

/* A description of pixels the caller owns (or, from *_alloc calls, that the library owns).
 * Rows are `stride` bytes apart (stride >= width * bytes per pixel). 8-bit formats hold 0..255;
 * float formats hold native-endian floats (data and stride 4-byte aligned). Inputs in float are
 * passed to the network as they are; float outputs are clamped to [0, 1] but not quantized, so they
 * carry the network's full precision. Alpha converts between the two (x / 255, round(x * 255)). */
typedef struct limn_image {
    uint8_t* data;
    int32_t width;
    int32_t height;
    size_t stride;
    limn_pixel_format format;
} limn_image;

/* Device images. A call whose options set images_device to "cuda" or "cuda:N" (limn_cartoonize,
 * limn_restore_faces, limn_detect_faces, limn_model_run_with, their _submit forms, and limn_frames
 * through the options given to limn_frames_create) takes its input and output in the memory of
 * that CUDA device: `data` is a device pointer (cudaMalloc, cudaMallocPitch, managed memory, a
 * graphics resource mapped into CUDA) and `stride` its pitch in bytes. The formats are those of
 * host images, pitched RGBA8 and BGRA8 (the usual texture layouts) included; alpha passes through,
 * and the output may be the input. The device must be the model's (a head model's and a detector's
 * too), and every byte the rows span must be mapped memory (checked: a kernel reading past it
 * would fault, which ends every CUDA call of the process). The pixels never visit host memory. A
 * device image for a model on the CPU, on another device than the model's, or with a build of limn
 * without CUDA is LIMN_ERR_INVALID_ARGUMENT.
 *
 * The caller's stream. With cuda_stream set (a stream of the model's device from cudaStreamCreate;
 * the special handles cudaStreamLegacy and cudaStreamPerThread, and a stream being captured into a
 * CUDA graph, are LIMN_ERR_INVALID_ARGUMENT), a call's work is queued on that stream: after what
 * the caller queued there before the call, and before what it queues after. With device images
 * the call then returns once the work is queued, without waiting for the device; the output is
 * complete when the stream gets there. What fails before that (arguments, out of memory) fails as
 * always, and the output is not written; but the result's finiteness is not checked, since
 * looking would make the host wait (so an fp16 model's fp32 fallback does not apply either).
 * Calls that detect faces wait for the detection. Once per model, the first call that sizes tiles
 * also runs the network twice on small inputs to measure its memory (limn_frames_create does that
 * in its warm-up). With host images and a stream, the call first waits for the stream (the host
 * reads the input after the caller's earlier work; that wait cannot be cancelled, and counts
 * against timeout_ms) and returns when the output is written.
 * With cuda_stream NULL the work runs on limn's own streams and the call returns when the output
 * is written and checked (device images too: limn waits for its stream); the caller's writes to
 * the input must then be complete (synchronize its stream first).
 *
 * Jobs (the _submit forms, limn_frames_submit) on a stream wait for what the caller queued on it
 * before the submit (an event recorded there at submit: on the device for device images, on the
 * host for host images); the job runs on limn's streams and ends when its output is written and
 * checked, so the job's end, not the stream, says when the output may be used. The stream must
 * outlive the job, and the work queued on it (do not destroy it before that work has run).
 * Freeing a model on a CUDA device first waits until the calls queued on callers' streams of that
 * device have run (not for other work), since they may still read its weights. */

/* Allocates a width x height image (stride = width * channels, pixels zeroed). The caller owns
 * *out and frees it with limn_image_free. */
LIMN_NODISCARD LIMN_API limn_status limn_image_alloc(int32_t width, int32_t height,
                                                     limn_pixel_format format, limn_image** out);

/* Frees an image returned by limn_image_alloc or limn_model_run_alloc. NULL is allowed. Never pass
 * a limn_image the caller built. */
LIMN_API void limn_image_free(limn_image* image);

/* Channels of a format (3 or 4), or 0 for an unknown value. */
LIMN_API int32_t limn_pixel_format_channels(limn_pixel_format format);

/* Bytes per pixel of a format (3, 4, 12 or 16), or 0 for an unknown value. */
LIMN_API int32_t limn_pixel_format_bytes_per_pixel(limn_pixel_format format);

/* ---- Image files ------------------------------------------------------------------------- */
/* Decoding: JPEG (baseline and progressive), PNG (8 and 16 bit), BMP, TGA, GIF (first frame), PSD
 * (composite), HDR, PIC, PNM. Encoding: PNG, JPEG, BMP, TGA. The size in a file's header is checked
 * against max_pixels before any pixel is decoded. */

typedef struct limn_image_load_options {
    size_t struct_size;            /* sizeof(limn_image_load_options), set by the init function */
    limn_pixel_format format;      /* 0 (default): RGBA8 if the file has alpha, else RGB8; otherwise
                                      the pixels are converted to this format */
    int32_t apply_orientation;     /* 1 (default): turn JPEG and PNG pixels upright per their EXIF
                                      orientation tag (phone photos; PNG's eXIf chunk); 0: pixels
                                      as stored */
    uint64_t max_pixels;           /* larger images are refused with LIMN_ERR_IMAGE_TOO_LARGE before
                                      decoding; default 64 Mpx; 0 = no limit */
    const char* name;              /* limn_image_load_from_memory: what messages call the bytes
                                      (e.g. the file they were read from); NULL (default): "<memory>".
                                      Borrowed for the call */
} limn_image_load_options;

/* Defaults for the caller's struct, through the inline limn_image_load_options_init below (see
 * "Growable structs" at the top). */
LIMN_NODISCARD LIMN_API limn_status
limn_image_load_options_init_sized(limn_image_load_options* options, size_t struct_size);
static inline limn_status limn_image_load_options_init(limn_image_load_options* options) {
    return limn_image_load_options_init_sized(options, sizeof(*options));
}

/* Decodes the image file at `path`; options may be NULL. On success the caller owns *out and frees
 * it with limn_image_free. A missing or unreadable file is LIMN_ERR_IO, undecodable bytes
 * LIMN_ERR_INVALID_IMAGE. */
LIMN_NODISCARD LIMN_API limn_status limn_image_load(const char* path,
                                                    const limn_image_load_options* options,
                                                    limn_image** out);

/* As limn_image_load, from `size` encoded bytes at `data` (not used after the call returns). */
LIMN_NODISCARD LIMN_API limn_status limn_image_load_from_memory(const void* data, size_t size,
                                                 const limn_image_load_options* options,
                                                 limn_image** out);

typedef enum limn_file_format {
    LIMN_FILE_FORMAT_AUTO = 0,     /* from the path's extension: .png .jpg .jpeg .bmp .tga .webp */
    LIMN_FILE_FORMAT_PNG = 1,
    LIMN_FILE_FORMAT_JPEG = 2,
    LIMN_FILE_FORMAT_BMP = 3,
    LIMN_FILE_FORMAT_TGA = 4,
    LIMN_FILE_FORMAT_WEBP = 5      /* quality 100: lossless; below: lossy at that quality (needs
                                      limn built with libwebp, else LIMN_ERR_UNSUPPORTED) */
} limn_file_format;

typedef struct limn_image_save_options {
    size_t struct_size;            /* sizeof(limn_image_save_options), set by the init function */
    limn_file_format file_format;  /* default AUTO */
    int32_t jpeg_quality;          /* 1..100, default 95 */
    const void* icc_profile;       /* NULL (default) or an ICC colour profile to embed (e.g. from
                                      limn_image_read_icc_profile): PNG iCCP, JPEG APP2, WebP ICCP;
                                      BMP and TGA cannot hold one and are written without it */
    size_t icc_profile_size;       /* bytes at icc_profile (at most 16,000,000) */
} limn_image_save_options;

/* Defaults for the caller's struct, through the inline limn_image_save_options_init below (see
 * "Growable structs" at the top). */
LIMN_NODISCARD LIMN_API limn_status
limn_image_save_options_init_sized(limn_image_save_options* options, size_t struct_size);
static inline limn_status limn_image_save_options_init(limn_image_save_options* options) {
    return limn_image_save_options_init_sized(options, sizeof(*options));
}

/* Checks the values saving and encoding check (jpeg_quality): LIMN_ERR_INVALID_ARGUMENT naming
 * the field and its range, as the call would fail. For wrappers that refuse a bad value before
 * loading a model; nothing else is done. */
LIMN_NODISCARD LIMN_API limn_status
limn_image_save_options_check(const limn_image_save_options* options);

/* Writes `size` bytes to `path` as limn_image_save writes its files: through a temporary file in
 * the same folder that is renamed into place, so readers see the old file or the new one, never a
 * part, and a failure leaves none; a symbolic link is written through (the link stays). For bytes
 * encoded elsewhere (limn_image_encode on another thread, process or machine). `data` may be NULL
 * when size is 0. LIMN_ERR_IO names the path and the system's reason. */
LIMN_NODISCARD LIMN_API limn_status limn_file_write(const char* path, const void* data, size_t size);

/* Encodes `image` (any pixel format; float is quantized to 8 bits, BGR reordered; JPEG drops
 * alpha) and writes it to `path` through a temporary file in the same folder that is renamed into
 * place, so a failure never leaves a partial file. options may be NULL. */
LIMN_NODISCARD LIMN_API limn_status limn_image_save(const char* path, const limn_image* image,
                                     const limn_image_save_options* options);

/* Encodes `image` in memory; options->file_format must not be AUTO. On success the caller owns
 * *data (*size bytes) and frees it with limn_buffer_free. */
LIMN_NODISCARD LIMN_API limn_status limn_image_encode(const limn_image* image,
                                                      const limn_image_save_options* options,
                                                      void** data, size_t* size);

/* The ICC colour profile embedded in the image file at `path` (JPEG APP2, PNG iCCP, WebP ICCP):
 * on success the caller owns *profile (*profile_size bytes) and frees it with limn_buffer_free.
 * A file without a profile, or with a damaged one, gives *profile NULL and *profile_size 0. */
LIMN_NODISCARD LIMN_API limn_status limn_image_read_icc_profile(const char* path, void** profile,
                                                                size_t* profile_size);

/* As limn_image_read_icc_profile, from `size` encoded bytes at `data`. */
LIMN_NODISCARD LIMN_API limn_status limn_image_read_icc_profile_from_memory(const void* data,
                                                                            size_t size,
                                                                            void** profile,
                                                                            size_t* profile_size);

/* Frees a buffer returned by limn_image_encode or limn_image_read_icc_profile. NULL is allowed. */
LIMN_API void limn_buffer_free(void* data);

/* ---- Models -------------------------------------------------------------------------------- */

typedef struct limn_model limn_model;

typedef enum limn_model_kind {
    LIMN_MODEL_KIND_ANY = 0,        /* as expected_kind: accept any kind */
    LIMN_MODEL_KIND_CARTOON = 1,
    LIMN_MODEL_KIND_FACE_RESTORE = 2,
    LIMN_MODEL_KIND_FACE_DETECT = 3
} limn_model_kind;

typedef enum limn_precision {
    LIMN_PRECISION_AUTO = 0,  /* fp16 on CUDA devices of compute capability >= 7.0; bf16 on a CPU
                                 with AMX-BF16 or AVX512-BF16 (face detectors stay fp32 there);
                                 else fp32. In fp32 when the reduced precision fails the model's
                                 self-test at load, or on the CPU comes within less than 45 dB
                                 of its fp32 output (precision_note says which) */
    LIMN_PRECISION_FP32 = 1,  /* IEEE fp32, on CUDA too (no TF32) */
    LIMN_PRECISION_FP16 = 2,
    LIMN_PRECISION_BF16 = 3,
    LIMN_PRECISION_TF32 = 4   /* fp32 tensors, convolutions in TF32 (10-bit mantissa) on CUDA
                                 devices of compute capability >= 8.0; not on the CPU */
} limn_precision;

/* Static text naming a precision ("auto", "fp32", "fp16", "bf16", "tf32") or a model kind ("any",
 * "cartoon", "face_restore", "face_detect"), as model files and the command line spell them; NULL
 * for a value that is not one of the enum's. */
LIMN_API const char* limn_precision_name(limn_precision precision);
LIMN_API const char* limn_model_kind_name(limn_model_kind kind);

/* A model's role (limn_model_info.role names it): a head model stylizes aligned face crops. */
typedef enum limn_model_role {
    LIMN_MODEL_ROLE_NONE = 0,       /* named "" */
    LIMN_MODEL_ROLE_HEAD = 1        /* named "head" */
} limn_model_role;

/* ---- Names ------------------------------------------------------------------------------- */
/* The names of limn's enums, one table each, as model files, the command line and the Python
 * package spell them ("fp32", "face_restore", "jpeg", "rgba8", "out_of_memory"). Every layer and
 * binding takes its names from here. Table LIMN_NAMES_TABLES names the tables themselves. */

typedef enum limn_name_table {
    LIMN_NAMES_TABLES = 0,
    LIMN_NAMES_STATUS = 1,          /* limn_status */
    LIMN_NAMES_PRECISION = 2,       /* limn_precision */
    LIMN_NAMES_MODEL_KIND = 3,      /* limn_model_kind */
    LIMN_NAMES_MODEL_ROLE = 4,      /* limn_model_role */
    LIMN_NAMES_FILE_FORMAT = 5,     /* limn_file_format */
    LIMN_NAMES_PIXEL_FORMAT = 6     /* limn_pixel_format */
} limn_name_table;

/* Static text naming `value` in `table`; NULL for a value (or table) that is not one of them. */
LIMN_API const char* limn_name(limn_name_table table, int32_t value);

/* The value `name` names in `table` into *value (file formats also take "jpg"). An unknown name is
 * LIMN_ERR_INVALID_ARGUMENT, listing the names; *value is then untouched. */
LIMN_NODISCARD LIMN_API limn_status limn_name_value(limn_name_table table, const char* name, int32_t* value);

/* Entry `index` (0, 1, ...) of `table`: its name, and its value into *value (may be NULL); NULL
 * past the last. The entries in value order come first, then other spellings limn_name_value
 * takes (such as "jpg"). For listing a table. */
LIMN_API const char* limn_names_entry(limn_name_table table, size_t index, int32_t* value);

/* ---- Models by name ---------------------------------------------------------------------- */

/* The file a model argument stands for: `source` itself when it names an existing file or is not
 * a model name (lowercase letters, digits, '-' and '_', at most 64); for a model name, its file
 * fetched by `limn models fetch` into the model cache: $LIMN_HOME, else $XDG_CACHE_HOME/limn (an
 * absolute XDG_CACHE_HOME), else ~/.cache/limn; the file is models/NAME.pt there. Written
 * NUL-terminated into `out` (`out_size` bytes). A name not fetched is LIMN_ERR_IO, saying the
 * command that fetches it; a path longer than out_size - 1 is LIMN_ERR_INVALID_ARGUMENT.
 * limn_model_load takes such names too: on the CPU in precision AUTO (or the package's), it loads
 * the package `limn models fetch` compiled for this CPU (models/NAME.cpu-bf16.pt2, then
 * NAME.cpu-fp32.pt2) when there is one this CPU can run, else models/NAME.pt. */
LIMN_NODISCARD LIMN_API limn_status limn_model_path(const char* source, char* out, size_t out_size);

typedef struct limn_model_options {
    size_t struct_size;           /* sizeof(limn_model_options), set by limn_model_options_init */
    const char* device;           /* NULL or "auto" (default), "cpu", "cuda", "cuda:N" */
    limn_precision precision;     /* default AUTO */
    limn_model_kind expected_kind;/* refuse other kinds with LIMN_ERR_WRONG_MODEL_KIND; default ANY */
    int32_t fp32_fallback;        /* 1: a non-finite fp16/bf16 result is recomputed in fp32;
                                     0: it fails with LIMN_ERR_NON_FINITE. Default 1 for AUTO
                                     precision, 0 otherwise (-1 = that default) */
    int32_t warmup;               /* 1 (default): run the network once at load */
    int32_t channels_last;        /* 1 / 0 / -1 (default: on): NHWC layout for the network
                                     (TorchScript; a compiled package's layout is fixed) */
    int32_t cudnn_benchmark;      /* 1 / 0 / -1 (default: on for fixed-size models, where shapes
                                     repeat): cuDNN times its algorithms for each new input
                                     shape. This model's setting only: the process's is never
                                     changed by a TorchScript model; a compiled CUDA package
                                     holds it in the process-wide context while it runs */
    uint64_t max_pixels;          /* images over width*height are refused; default 64 Mpx */
    const char* name;             /* how messages name a model loaded from memory; may be NULL */
    const char* expected_sha256;  /* NULL (default), or 64 hex digits: the file's (or the
                                     bytes') SHA-256 must be this, checked before anything in it
                                     is read, else LIMN_ERR_INVALID_MODEL. Recommended for .pt2
                                     packages, which are native code */
} limn_model_options;

/* Defaults for the caller's struct, through the inline limn_model_options_init below (see
 * "Growable structs" at the top). */
LIMN_NODISCARD LIMN_API limn_status
limn_model_options_init_sized(limn_model_options* options, size_t struct_size);
static inline limn_status limn_model_options_init(limn_model_options* options) {
    return limn_model_options_init_sized(options, sizeof(*options));
}

/* Loads a limn model file onto the chosen device and precision. `options` may be NULL (defaults).
 * `path` may also be a model name fetched into the cache (limn_model_path says which file).
 * On success the caller owns *out and frees it with limn_model_free.
 * Two formats, told apart by content: a TorchScript archive (.pt) runs on any device in any
 * precision; a compiled package (.pt2, torch.export + AOTInductor) is native code built for one
 * device kind (cpu or cuda), one precision and, on the CPU, the instruction set of the machine
 * that compiled it. For a package, device "auto" and precision AUTO take what it was built for;
 * anything else it was not built for is LIMN_ERR_UNSUPPORTED. Load only packages you trust (their
 * code runs in your process); see expected_sha256. */
LIMN_NODISCARD LIMN_API limn_status limn_model_load(const char* path,
                                                    const limn_model_options* options,
                                                    limn_model** out);

/* Same as limn_model_load, from `size` bytes at `data`; the bytes are not used after the call
 * returns. A compiled package is written to a private temporary file ($TMPDIR, else /tmp, mode
 * 0600) for LibTorch's loader to read, and deleted before the call returns. */
LIMN_NODISCARD LIMN_API limn_status limn_model_load_from_memory(const void* data, size_t size,
                                                 const limn_model_options* options,
                                                 limn_model** out);

/* Frees the model and its device memory. NULL is allowed. */
LIMN_API void limn_model_free(limn_model* model);

typedef struct limn_model_info {
    size_t struct_size;         /* set by the caller: sizeof(limn_model_info) */
    limn_model_kind kind;
    int32_t format_version;     /* of the metadata inside the file */
    char name[128];
    char device[32];            /* canonical id the model runs on, e.g. "cuda:0" */
    limn_precision precision;   /* resolved, never AUTO */
    int32_t size_multiple;      /* width and height must be multiples of this (>= 1) */
    int32_t fixed_width;        /* > 0: the model takes exactly this size; 0: any size */
    int32_t fixed_height;
    int32_t tile_margin;        /* pixels of context a tile needs on each side */
    int32_t has_face_template;  /* 1 if face_template is valid */
    float face_template[10];    /* 5 points (x, y) at model size: eyes, nose, mouth corners */
    char source[256];           /* where the weights came from */
    char license[256];          /* licence of the weights, as their publishers state it */
    char format[16];            /* "torchscript" or "pt2" (a compiled package) */
    int32_t min_width;          /* smallest input a raw run takes (1 but for some compiled */
    int32_t min_height;         /* packages); the pipelines pad smaller pictures */
    char precision_note[512];   /* "" or why `precision` is not what AUTO gives on this device
                                   (fp16 failed the load-time self-test, so fp32), or why it is
                                   slow here (bf16 or fp16 asked for on a CPU that emulates it) */
    char role[16];              /* "" or "head": a cartoon network for aligned face crops of
                                   crop_size pixels, the face on face_template (DCT-Net's head) */
    int32_t crop_size;          /* head models: the side of the aligned crop; else 0 */
    int32_t min_tile_size;      /* the smallest cartoonize tile_size for a picture larger than one
                                   tile (smaller is LIMN_ERR_INVALID_ARGUMENT); 0 from a library
                                   older than this field */
} limn_model_info;

/* Fills *out (out->struct_size must be set; only that many bytes are written). */
LIMN_NODISCARD LIMN_API limn_status limn_model_get_info(const limn_model* model,
                                                        limn_model_info* out);

/* Runs the network once on `input`, whose size must already fit the model's size rule, and
 * writes the result into `output` (same width and height; any pixel format). If both have alpha,
 * alpha is copied from the input; otherwise an output alpha is 255. input and output may be the
 * same buffer. */
LIMN_NODISCARD LIMN_API limn_status limn_model_run(limn_model* model, const limn_image* input,
                                                   limn_image* output);

/* As limn_model_run, into a new image of `format` that the caller frees with limn_image_free. */
LIMN_NODISCARD LIMN_API limn_status limn_model_run_alloc(limn_model* model, const limn_image* input,
                                          limn_pixel_format format, limn_image** out);

/* Runs `count` images of one size as one batch: outputs[i] receives the result for inputs[i]. */
LIMN_NODISCARD LIMN_API limn_status limn_model_run_batch(limn_model* model,
                                                         const limn_image* inputs,
                                                         limn_image* outputs, size_t count);

/* Where a raw run's images are (see "Device images"). */
typedef struct limn_run_options {
    size_t struct_size;           /* sizeof(limn_run_options), set by the init function */
    const char* images_device;    /* where inputs and outputs are: NULL (default) or "cpu": host
                                     memory; "cuda" or "cuda:N": memory of the model's CUDA device.
                                     Borrowed for the call */
    void* cuda_stream;            /* a cudaStream_t of the model's device to queue the work on;
                                     NULL (default): limn's own streams */
} limn_run_options;

/* Defaults for the caller's struct (see "Growable structs" at the top). */
LIMN_NODISCARD LIMN_API limn_status limn_run_options_init_sized(limn_run_options* options,
                                                                size_t struct_size);
static inline limn_status limn_run_options_init(limn_run_options* options) {
    return limn_run_options_init_sized(options, sizeof(*options));
}

/* limn_model_run_batch with options (NULL: the defaults, host memory): device images in and out
 * of a raw run. count may be 1. */
LIMN_NODISCARD LIMN_API limn_status limn_model_run_with(limn_model* model, const limn_image* inputs,
                                                        limn_image* outputs, size_t count,
                                                        const limn_run_options* options);

/* ---- Pipelines ----------------------------------------------------------------------------- */

/* Called from the calling thread after each step of long work (a tile, a face) with the steps
 * done so far and the total; return 0 to go on, anything else to stop with LIMN_ERR_CANCELLED.
 * Called once with done = 0 before the first step. */
typedef int32_t (*limn_progress_callback)(int32_t done, int32_t total, void* user_data);

/* What a pipeline call did; pass NULL where not wanted. */
typedef struct limn_pipeline_stats {
    size_t struct_size;      /* set by the caller: sizeof(limn_pipeline_stats) */
    int32_t tile_size;       /* side of the tiles the network ran on */
    int32_t tiles;           /* network runs */
    int32_t oom_retries;     /* restarts with smaller tiles after running out of memory */
    int32_t width;           /* size the network worked at (smaller than the input with max_side) */
    int32_t height;
    int32_t faces;           /* faces restored */
    double seconds;          /* wall time of the call */
    int32_t faces_found;     /* faces given or detected */
    int32_t faces_skipped;   /* faces left alone: under min_face_size or entirely outside */
} limn_pipeline_stats;

typedef struct limn_cartoonize_options {
    size_t struct_size;           /* sizeof(limn_cartoonize_options), set by the init function */
    float strength;               /* 0..1, default 1: blend of the cartoon over the input; 0 returns
                                     the input exactly */
    int32_t max_side;             /* > 0: the network works on a copy downscaled (antialiased) so
                                     its longer side is at most this, and the result is scaled back
                                     to the input size; default 0 (full size) */
    int32_t tile_size;            /* > 0: tiles of this side (rounded down to the size multiple);
                                     0 (default): one pass if it fits the memory budget, else the
                                     largest tiles that do, from the model's measured bytes per
                                     pixel. Tiles overlap by twice the model's tile margin and are
                                     blended with feathered weights */
    uint64_t memory_budget;       /* bytes; 0 (default): the device's limit (limn_memory_set_limit)
                                     if set, else 90% of its free memory (CUDA) or available RAM */
    uint32_t timeout_ms;          /* > 0: fail with LIMN_ERR_TIMEOUT once this much time has passed
                                     (checked between tiles); default 0 (none) */
    limn_progress_callback progress;  /* may be NULL (default); one step per tile, then per face */
    void* progress_user_data;
    /* DCT-Net's compound stylization (its official pipeline): with a head model, `model` (the
     * background network) runs on the whole photo at the working size, and each face is aligned
     * by a similarity transform to the head model's template, stylized by the head model at its
     * crop size (crop pixels beyond the photo white), warped back and blended over the result
     * with a feathered mask. stats count faces found, stylized and skipped (outside the photo). */
    limn_model* head_model;       /* a cartoon model of role "head" (limn_model_info.role) on the
                                     same device; NULL (default): the whole photo only */
    limn_model* detector;         /* a face_detect model that finds the faces when none are given */
    const struct limn_detect_faces_options* detect_options;  /* for the detector; NULL: its
                                                                defaults (declared below) */
    const struct limn_face* faces;  /* the faces, in input pixels (only their landmarks are used);
                                     used instead of the detector when face_count > 0 */
    size_t face_count;
    int32_t working_size;         /* with a head model: the photo is worked on downscaled so its
                                     shorter side is at most this (default 720, as the official
                                     pipeline), then scaled back; 0: full size */
    float feather;                /* soft edge of the head's mask, a fraction of its crop side
                                     (0..0.5); default 0.1 */
    const char* images_device;    /* where input and output are (see "Device images"): NULL (default) or
                                     "cpu": host memory; "cuda" or "cuda:N": memory of the model's
                                     CUDA device. Borrowed for the call */
    void* cuda_stream;            /* a cudaStream_t of the model's device to queue the work on (see
                                     "Device images"); NULL (default): limn's own streams */
} limn_cartoonize_options;

/* The number fields of limn_cartoonize_options by name, as an X-macro (X(field) for each), for
 * bindings that set or copy options generically: limn's C boundary and its Python package read
 * this list, so a new number field is appended to the struct and named here, nowhere else. */
#define LIMN_CARTOONIZE_OPTIONS_NUMBERS(X) X(strength) X(max_side) X(tile_size) X(memory_budget) \
    X(timeout_ms) X(working_size) X(feather)

/* Defaults for the caller's struct, through the inline limn_cartoonize_options_init below (see
 * "Growable structs" at the top). */
LIMN_NODISCARD LIMN_API limn_status
limn_cartoonize_options_init_sized(limn_cartoonize_options* options, size_t struct_size);
static inline limn_status limn_cartoonize_options_init(limn_cartoonize_options* options) {
    return limn_cartoonize_options_init_sized(options, sizeof(*options));
}

/* Checks the values limn_cartoonize checks before it needs the model (strength, sizes, feather,
 * faces, and detect_options when a detector is set): LIMN_ERR_INVALID_ARGUMENT naming the field
 * and its range, as the call would fail. For wrappers that refuse a bad value before loading a
 * model; nothing else is done. */
LIMN_NODISCARD LIMN_API limn_status
limn_cartoonize_options_check(const limn_cartoonize_options* options);

/* Cartoonizes a whole photo of any size (up to the model's max_pixels) with a cartoon model:
 * pads to the model's size rule and crops back, tiles when memory requires, and on an
 * out-of-memory error retries with smaller tiles. `output` must have the input's size (any pixel
 * format; alpha as in limn_model_run) and may be the input buffer; it is written only on
 * success. options and stats may be NULL. */
LIMN_NODISCARD LIMN_API limn_status limn_cartoonize(limn_model* model, const limn_image* input,
                                                    limn_image* output,
                                                    const limn_cartoonize_options* options,
                                                    limn_pipeline_stats* stats);

/* A face in a photo. Coordinates are photo pixels with pixel centres at integers (OpenCV's
 * convention). Callers that track faces fill `landmarks`; a detector also fills `box` and
 * `score`. */
typedef struct limn_face {
    float box[4];          /* x0, y0, x1, y1; informational for restoration */
    float landmarks[10];   /* (x, y) of: left eye, right eye, nose tip, left and right mouth corners,
                              "left" as seen in the picture */
    float score;           /* detector confidence in [0, 1]; informational for restoration */
} limn_face;

typedef struct limn_detect_faces_options {
    size_t struct_size;           /* sizeof(limn_detect_faces_options), set by the init function */
    float score_threshold;        /* 0..1, default 0.9: faces scoring lower are dropped */
    float nms_iou;                /* (0, 1], default 0.4: of two faces whose boxes overlap more
                                     than this (intersection over union), the weaker is dropped */
    int32_t max_faces;            /* > 0: keep at most this many, best scores first; 0 (default): all */
    int32_t max_side;             /* > 0: detect on a copy downscaled (antialiased) so its longer
                                     side is at most this, and map the results back; default 1024;
                                     0: full size */
    const char* images_device;    /* where the input is (see "Device images"): NULL (default) or
                                     "cpu": host memory; "cuda" or "cuda:N": memory of the model's
                                     CUDA device. Borrowed for the call. In the
                                     detect_options of another call, these two must be unset:
                                     that call's own say where its images are */
    void* cuda_stream;            /* a cudaStream_t of the model's device to queue the work on (see
                                     "Device images"); NULL (default): limn's own streams */
} limn_detect_faces_options;

/* The number fields of limn_detect_faces_options by name (see LIMN_CARTOONIZE_OPTIONS_NUMBERS). */
#define LIMN_DETECT_FACES_OPTIONS_NUMBERS(X) X(score_threshold) X(nms_iou) X(max_faces) X(max_side)

/* Defaults for the caller's struct, through the inline limn_detect_faces_options_init below (see
 * "Growable structs" at the top). */
LIMN_NODISCARD LIMN_API limn_status
limn_detect_faces_options_init_sized(limn_detect_faces_options* options, size_t struct_size);
static inline limn_status limn_detect_faces_options_init(limn_detect_faces_options* options) {
    return limn_detect_faces_options_init_sized(options, sizeof(*options));
}

/* Checks the values limn_detect_faces checks before it needs the model:
 * LIMN_ERR_INVALID_ARGUMENT naming the field and its range, as the call would fail. For
 * wrappers that refuse a bad value before loading a model; nothing else is done. */
LIMN_NODISCARD LIMN_API limn_status
limn_detect_faces_options_check(const limn_detect_faces_options* options);

/* Finds faces in `input` with a face_detect model (e.g. RetinaFace): box, score and 5 landmarks
 * in the input's pixel coordinates, best score first. Writes min(found, capacity) faces into
 * faces[] (which may be NULL when capacity is 0) and the number found into *out_count, so a
 * caller whose buffer was too small can call again with a larger one. options may be NULL. */
LIMN_NODISCARD LIMN_API limn_status limn_detect_faces(limn_model* detector, const limn_image* input,
                                       const limn_detect_faces_options* options, limn_face* faces,
                                       size_t capacity, size_t* out_count);

typedef struct limn_restore_faces_options {
    size_t struct_size;           /* sizeof(limn_restore_faces_options), set by the init function */
    float strength;               /* 0..1, default 1: blend of the restored faces over the photo */
    float min_face_size;          /* faces whose aligned crop covers fewer photo pixels across are
                                     left alone; default 16 */
    float feather;                /* soft edge of the paste-back mask, as a fraction of the crop
                                     side (0..0.5); default 0.1 */
    uint32_t timeout_ms;          /* > 0: LIMN_ERR_TIMEOUT once exceeded (checked between faces) */
    limn_progress_callback progress;  /* one step per face; may be NULL */
    void* progress_user_data;
    limn_model* detector;         /* a face_detect model, used when no faces are given (faces NULL,
                                     face_count 0); default NULL: restore only the faces given */
    const limn_detect_faces_options* detect_options;  /* for the detector; NULL: its defaults */
    const char* images_device;    /* where input and output are (see "Device images"): NULL (default) or
                                     "cpu": host memory; "cuda" or "cuda:N": memory of the model's
                                     CUDA device. Borrowed for the call */
    void* cuda_stream;            /* a cudaStream_t of the model's device to queue the work on (see
                                     "Device images"); NULL (default): limn's own streams */
} limn_restore_faces_options;

/* The number fields of limn_restore_faces_options by name (see LIMN_CARTOONIZE_OPTIONS_NUMBERS). */
#define LIMN_RESTORE_FACES_OPTIONS_NUMBERS(X) X(strength) X(min_face_size) X(feather) X(timeout_ms)

/* Defaults for the caller's struct, through the inline limn_restore_faces_options_init below (see
 * "Growable structs" at the top). */
LIMN_NODISCARD LIMN_API limn_status
limn_restore_faces_options_init_sized(limn_restore_faces_options* options, size_t struct_size);
static inline limn_status limn_restore_faces_options_init(limn_restore_faces_options* options) {
    return limn_restore_faces_options_init_sized(options, sizeof(*options));
}

/* Checks the values limn_restore_faces checks before it needs the model (and detect_options
 * when a detector is set): LIMN_ERR_INVALID_ARGUMENT naming the field and its range, as the
 * call would fail. For wrappers that refuse a bad value before loading a model; nothing else is
 * done. */
LIMN_NODISCARD LIMN_API limn_status
limn_restore_faces_options_check(const limn_restore_faces_options* options);

/* Restores `face_count` faces of `input` with a face_restore model: each face is warped to the
 * model's 5-point template by a least-squares similarity transform, restored, warped back and
 * pasted with a feathered mask. Faces may lie partly outside the photo; faces entirely outside
 * or under min_face_size are skipped (stats->faces counts those restored, stats->faces_skipped
 * those left alone). face_count may be 0. With no faces given and options->detector set, the
 * faces are found by limn_detect_faces first.
 * `output` must have the input's size and may be the input buffer; it is written only on
 * success. options and stats may be NULL. */
LIMN_NODISCARD LIMN_API limn_status limn_restore_faces(limn_model* model, const limn_image* input,
                                                       limn_image* output, const limn_face* faces,
                                                       size_t face_count,
                                                       const limn_restore_faces_options* options,
                                                       limn_pipeline_stats* stats);

/* ---- Asynchronous jobs ---------------------------------------------------------------------
 * limn_model_run_submit, limn_cartoonize_submit, limn_detect_faces_submit and
 * limn_restore_faces_submit take the arguments of the synchronous calls and return at once with a
 * job, which runs on the library's worker pool (limn_jobs_start; by default 2 workers, started at
 * the first submit). Jobs on one model run concurrently, as calls from several threads do; memory
 * limits, timeout_ms and progress apply as in the synchronous calls (timeout_ms counts from when
 * the job starts, and progress is called on the worker).
 *
 * At submit the arguments are checked and the options struct copied (with its faces and
 * detect_options); a failed submit returns its status and makes no job. The images' pixels,
 * `stats`, and detect_faces' `faces` and `out_count` must stay valid until the job has ended: the
 * worker reads the input and writes the outputs, which are complete when the callback runs.
 *
 * Every job ends exactly once, with LIMN_OK, the call's failure, or LIMN_ERR_CANCELLED, and its
 * callback (if any) is then called exactly once, on a pool worker. limn_job_cancel stops a job
 * that has not started (it never runs) and asks a running pipeline to stop at its next step (a
 * tile or a face); a raw run or a detection that has started finishes. limn_model_free of a model
 * a job uses (as its model, head_model or detector), and limn_jobs_shutdown, cancel its jobs the
 * same way; the model's memory is freed when its last job has ended.
 *
 * The callback must not block: on a pool worker, the synchronous model calls (limn_model_run,
 * limn_model_run_alloc, limn_model_run_batch, limn_model_run_with, limn_cartoonize,
 * limn_detect_faces, limn_restore_faces, limn_frames_run), limn_job_wait with a timeout other than 0, and
 * limn_jobs_shutdown fail with LIMN_ERR_INVALID_ARGUMENT instead of waiting for the worker they
 * run on. Submitting, polling and cancelling are allowed there.
 *
 * After fork(), the child has a pool of its own, started by its first submit; the parent's jobs
 * stay the parent's. LibTorch's CPU thread pool (OpenMP) is another matter: a child forked after
 * it ran may hang in it, so a process that runs models should start its workers by spawn or exec,
 * not a bare fork. */
typedef struct limn_job limn_job;

/* status: how the job ended; message: "" or what failed (valid during the call); user_data: as
 * given in limn_job_options. */
typedef void (*limn_job_callback)(limn_status status, const char* message, void* user_data);

typedef struct limn_job_options {
    size_t struct_size;          /* sizeof(limn_job_options), set by the init function */
    limn_job_callback callback;  /* may be NULL (default): poll or wait instead */
    void* user_data;
} limn_job_options;

/* Defaults for the caller's struct (see "Growable structs" at the top). */
LIMN_NODISCARD LIMN_API limn_status limn_job_options_init_sized(limn_job_options* options,
                                                                size_t struct_size);
static inline limn_status limn_job_options_init(limn_job_options* options) {
    return limn_job_options_init_sized(options, sizeof(*options));
}

/* Starts the worker pool with `workers` threads (0: the default, 2; at most 256). Optional: the
 * first submit starts the default pool. LIMN_ERR_INVALID_ARGUMENT if it runs with another size
 * (limn_jobs_shutdown first). */
LIMN_NODISCARD LIMN_API limn_status limn_jobs_start(int32_t workers);

/* Cancels every job not yet ended, waits until each has ended and its callback has returned, and
 * stops the workers; the next submit starts the pool again. Call it before the process exits
 * while jobs may run. */
LIMN_NODISCARD LIMN_API limn_status limn_jobs_shutdown(void);

/* The asynchronous calls: the synchronous call's arguments, then job_options (may be NULL) and
 * `out`, which receives the job (free it with limn_job_free). */
LIMN_NODISCARD LIMN_API limn_status limn_model_run_submit(limn_model* model, const limn_image* input,
                                                          limn_image* output,
                                                          const limn_job_options* job_options,
                                                          limn_job** out);
/* limn_model_run_with as a job: the `count` image descriptions and the options are copied at
 * submit. */
LIMN_NODISCARD LIMN_API limn_status
limn_model_run_with_submit(limn_model* model, const limn_image* inputs, limn_image* outputs, size_t count,
                           const limn_run_options* options, const limn_job_options* job_options,
                           limn_job** out);
LIMN_NODISCARD LIMN_API limn_status
limn_cartoonize_submit(limn_model* model, const limn_image* input, limn_image* output,
                       const limn_cartoonize_options* options, limn_pipeline_stats* stats,
                       const limn_job_options* job_options, limn_job** out);
LIMN_NODISCARD LIMN_API limn_status
limn_detect_faces_submit(limn_model* detector, const limn_image* input,
                         const limn_detect_faces_options* options, limn_face* faces,
                         size_t capacity, size_t* out_count, const limn_job_options* job_options,
                         limn_job** out);
LIMN_NODISCARD LIMN_API limn_status
limn_restore_faces_submit(limn_model* model, const limn_image* input, limn_image* output,
                          const limn_face* faces, size_t face_count,
                          const limn_restore_faces_options* options, limn_pipeline_stats* stats,
                          const limn_job_options* job_options, limn_job** out);

/* Waits until the job has ended and its callback has returned, at most timeout_ms (0: just look;
 * < 0: no limit). LIMN_OK with *job_status set (the job's status; limn_job_message says why it
 * failed) once it has, LIMN_ERR_TIMEOUT if it has not. */
LIMN_NODISCARD LIMN_API limn_status limn_job_wait(limn_job* job, int64_t timeout_ms,
                                                  limn_status* job_status);

/* What the job's failure said; "" while it runs or when it succeeded. Valid until limn_job_free. */
LIMN_API const char* limn_job_message(const limn_job* job);

/* Cancels the job (see above). Cancelling a job that has ended does nothing. */
LIMN_NODISCARD LIMN_API limn_status limn_job_cancel(limn_job* job);

/* Releases the handle. A job that has not ended goes on (cancel it first to stop it); its
 * callback is still called. NULL is allowed. */
LIMN_API void limn_job_free(limn_job* job);

/* ---- Frames: a model prepared for a stream of frames of one size ---------------------------
 * limn_frames_create prepares `model` (a cartoon model) to cartoonize frames of width x height in
 * `format` with `options` (copied, with its faces; a head model or detector it names is kept until
 * limn_frames_free), and runs one black frame to warm up. Each frame's tensors then come from the
 * frames' own CPU arena (on CUDA, the caching allocator's blocks), so once warm a frame takes no
 * memory from the system: limn_memory_stats.allocations stays put (unless the CPU arenas are
 * turned off, LIMN_CPU_ARENA_MAX=0). limn_frames_run is one frame
 * (input and output of the frames' size and format; may be the same buffer); limn_frames_submit
 * the same as a job (see "Asynchronous jobs"). The options' images_device and cuda_stream hold for
 * every frame (see "Device images"; the warm-up runs there, and create waits for it). Frames may be
 * run from several threads at once.
 * The frames hold the model: limn_model_free of it cancels their jobs, and its memory is freed
 * with the frames. */
typedef struct limn_frames limn_frames;

LIMN_NODISCARD LIMN_API limn_status limn_frames_create(limn_model* model, int32_t width, int32_t height,
                                                       limn_pixel_format format,
                                                       const limn_cartoonize_options* options,
                                                       limn_frames** out);
LIMN_NODISCARD LIMN_API limn_status limn_frames_run(limn_frames* frames, const limn_image* input,
                                                    limn_image* output);
LIMN_NODISCARD LIMN_API limn_status limn_frames_submit(limn_frames* frames, const limn_image* input,
                                                       limn_image* output,
                                                       const limn_job_options* job_options,
                                                       limn_job** out);
/* NULL is allowed. Jobs of the frames that have not ended are cancelled first. */
LIMN_API void limn_frames_free(limn_frames* frames);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LIMN_LIMN_H */
