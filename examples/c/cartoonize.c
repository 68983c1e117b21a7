/* cartoonize.c: the smallest complete C program with limn: load a photo, cartoonize it, save it.
 *
 *     limn-cartoonize-c MODEL IN OUT [DEVICE]
 *
 * Any photo size works (the library pads, tiles and restores it); OUT's extension picks the
 * format (.png, .jpg, .bmp, .tga). Errors print limn's message and exit with status 1. */
#include <stdio.h>

#include <limn/limn.h>

static int fail(const char* what) {
    fprintf(stderr, "%s: %s\n", what, limn_last_error());
    return 1;
}

int main(int argc, char** argv) {
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s MODEL IN OUT [DEVICE]\n", argv[0]);
        return 2;
    }
    limn_model_options opts;
    limn_model_options_init(&opts);
    opts.device = argc == 5 ? argv[4] : "auto";
    opts.expected_kind = LIMN_MODEL_KIND_CARTOON;

    limn_model* model = NULL;
    limn_image* photo = NULL;
    int status = 0;
    if (limn_model_load(argv[1], &opts, &model) != LIMN_OK) return fail("load model");
    if (limn_image_load(argv[2], NULL, &photo) != LIMN_OK) {
        status = fail("load photo");
    } else {
        limn_pipeline_stats stats;
        stats.struct_size = sizeof stats;
        /* In place: the photo's buffer receives the cartoon. */
        if (limn_cartoonize(model, photo, photo, NULL, &stats) != LIMN_OK) {
            status = fail("cartoonize");
        } else if (limn_image_save(argv[3], photo, NULL) != LIMN_OK) {
            status = fail("save");
        } else {
            printf("%s: %dx%d, %d tile(s), %.3f s\n", argv[3], photo->width, photo->height, stats.tiles,
                   stats.seconds);
        }
    }
    limn_image_free(photo);
    limn_model_free(model);
    return status;
}
