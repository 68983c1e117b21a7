/* cartoonize.c: the smallest complete C program with limn: load a photo, cartoonize it, save it.
 *
 *     limn-cartoonize-c MODEL IN OUT [DEVICE [HEAD_MODEL DETECTOR]]
 *
 * Any photo size works (the library pads, tiles and restores it); OUT's extension picks the
 * format (.png, .jpg, .bmp, .tga). With HEAD_MODEL and DETECTOR it is DCT-Net's compound
 * stylization: MODEL (cartoon_bg.pb converted) on the whole photo, HEAD_MODEL (cartoon_h.pb) on
 * each face DETECTOR (e.g. RetinaFace) finds. Errors print limn's message and exit with status 1. */
#define _POSIX_C_SOURCE 200809L /* stat() */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <limn/limn.h>

static int fail(const char* what) {
    fprintf(stderr, "%s: %s\n", what, limn_last_error());
    return 1;
}

/* Whether two paths name one file (an existing OUT that is IN): never overwrite the input. */
static int same_file(const char* a, const char* b) {
    struct stat sa, sb;
    if (strcmp(a, b) == 0) return 1;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int main(int argc, char** argv) {
    if (argc != 4 && argc != 5 && argc != 7) {
        fprintf(stderr, "usage: %s MODEL IN OUT [DEVICE [HEAD_MODEL DETECTOR]]\n", argv[0]);
        return 2;
    }
    if (same_file(argv[2], argv[3])) {
        fprintf(stderr, "%s: OUT is IN (%s); write the cartoon to another file\n", argv[0], argv[3]);
        return 2;
    }
    limn_model_options opts;
    limn_model_options_init(&opts);
    opts.device = argc >= 5 ? argv[4] : "auto";
    opts.expected_kind = LIMN_MODEL_KIND_CARTOON;

    limn_model *model = NULL, *head = NULL, *detector = NULL;
    limn_image* photo = NULL;
    limn_cartoonize_options cartoon;
    int status = 0;
    limn_cartoonize_options_init(&cartoon);
    if (limn_model_load(argv[1], &opts, &model) != LIMN_OK) return fail("load model");
    if (argc == 7) {
        if (limn_model_load(argv[5], &opts, &head) != LIMN_OK) {
            limn_model_free(model);
            return fail("load head model");
        }
        opts.expected_kind = LIMN_MODEL_KIND_FACE_DETECT;
        if (limn_model_load(argv[6], &opts, &detector) != LIMN_OK) {
            limn_model_free(head);
            limn_model_free(model);
            return fail("load detector");
        }
        cartoon.head_model = head;   /* each face: aligned, stylized by the head model, blended */
        cartoon.detector = detector; /* finds the faces (or set cartoon.faces and face_count) */
    }
    if (limn_image_load(argv[2], NULL, &photo) != LIMN_OK) {
        status = fail("load photo");
    } else {
        limn_pipeline_stats stats;
        stats.struct_size = sizeof stats;
        /* In place: the photo's buffer receives the cartoon. */
        if (limn_cartoonize(model, photo, photo, &cartoon, &stats) != LIMN_OK) {
            status = fail("cartoonize");
        } else if (limn_image_save(argv[3], photo, NULL) != LIMN_OK) {
            status = fail("save");
        } else {
            printf("%s: %dx%d, %d tile(s), %d face(s) stylized, %.3f s\n", argv[3], photo->width,
                   photo->height, stats.tiles, stats.faces, stats.seconds);
        }
    }
    limn_image_free(photo);
    limn_model_free(detector);
    limn_model_free(head);
    limn_model_free(model);
    return status;
}
