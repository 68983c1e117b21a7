/* raw_run: the C ABI end to end. Loads a limn model, runs it once on a binary PPM (P6) image
 * whose size fits the model, and writes the result as PPM (to a temporary name, then renamed).
 *
 *   raw_run MODEL.pt IN.ppm OUT.ppm [DEVICE] [PRECISION]
 *
 * DEVICE: cpu, cuda, cuda:N, auto (default). PRECISION: auto (default), fp32, fp16, bf16. */
#define _POSIX_C_SOURCE 200809L
#include <limn/limn.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint8_t* read_ppm(const char* path, int* w, int* h) {
    FILE* f = fopen(path, "rb");
    int maxval = 0;
    uint8_t* px;
    if (!f) {
        perror(path);
        return NULL;
    }
    if (fscanf(f, "P6 %d %d %d", w, h, &maxval) != 3 || maxval != 255 || *w <= 0 || *h <= 0 ||
        *w > 65536 || *h > 65536 || fgetc(f) == EOF) {
        fprintf(stderr, "%s: not a binary 8-bit PPM (P6)\n", path);
        fclose(f);
        return NULL;
    }
    px = (uint8_t*)malloc((size_t)*w * (size_t)*h * 3);
    if (!px || fread(px, 3, (size_t)*w * (size_t)*h, f) != (size_t)*w * (size_t)*h) {
        fprintf(stderr, "%s: truncated pixel data\n", path);
        free(px);
        fclose(f);
        return NULL;
    }
    fclose(f);
    return px;
}

static int write_ppm(const char* path, const limn_image* img) {
    char tmp[4096];
    FILE* f;
    int y, ok = 1;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (!f) {
        perror(tmp);
        return 0;
    }
    ok = fprintf(f, "P6\n%d %d\n255\n", img->width, img->height) > 0;
    for (y = 0; ok && y < img->height; ++y)
        ok = fwrite(img->data + (size_t)y * img->stride, 3, (size_t)img->width, f) == (size_t)img->width;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        remove(tmp);
        return 0;
    }
    return 1;
}

/* The precision the library names `s` ("fp16", ...); AUTO for any other text. */
static limn_precision parse_precision(const char* s) {
    int p;
    for (p = LIMN_PRECISION_AUTO; limn_precision_name((limn_precision)p); ++p) {
        if (!strcmp(s, limn_precision_name((limn_precision)p))) return (limn_precision)p;
    }
    return LIMN_PRECISION_AUTO;
}

int main(int argc, char** argv) {
    limn_model_options opts;
    limn_model* model = NULL;
    limn_model_info info;
    limn_image in, *out = NULL;
    limn_status st;
    struct timespec t0, t1;
    int w = 0, h = 0, rc = 1;
    uint8_t* px;

    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.pt IN.ppm OUT.ppm [DEVICE] [PRECISION]\n", argv[0]);
        return 2;
    }
    px = read_ppm(argv[2], &w, &h);
    if (!px) return 1;

    limn_model_options_init(&opts);
    if (argc > 4) opts.device = argv[4];
    if (argc > 5) opts.precision = parse_precision(argv[5]);
    st = limn_model_load(argv[1], &opts, &model);
    if (st != LIMN_OK) {
        fprintf(stderr, "limn: %s: %s\n", limn_status_string(st), limn_last_error());
        free(px);
        return 1;
    }
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (limn_model_get_info(model, &info) != LIMN_OK) {
        fprintf(stderr, "limn: %s\n", limn_last_error());
        limn_model_free(model);
        free(px);
        return 1;
    }

    in.data = px;
    in.width = w;
    in.height = h;
    in.stride = (size_t)w * 3;
    in.format = LIMN_PIXEL_RGB8;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    st = limn_model_run_alloc(model, &in, LIMN_PIXEL_RGB8, &out);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (st != LIMN_OK) {
        fprintf(stderr, "limn: %s: %s\n", limn_status_string(st), limn_last_error());
    } else if (write_ppm(argv[3], out)) {
        printf("model %s (%s) on %s in %s: %dx%d in %.1f ms -> %s\n", info.name, argv[1], info.device,
               limn_precision_name(info.precision), w, h,
               (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6, argv[3]);
        rc = 0;
    }
    limn_image_free(out);
    limn_model_free(model);
    free(px);
    return rc;
}
