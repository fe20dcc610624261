/* Comparison of two checkpoints' tile datasets for the tests (ckpt_compare.h). */
#include "ckpt_compare.h"

#include "rpusim/ckpt.h"
#include "rpusim/tile.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tl_ckpt_compare_tiles(const char *a, const char *b, int *bad, char *first, size_t cap) {
    rpu_ckpt_file *fa = NULL, *fb = NULL;
    int n = 0;
    *bad = 0;
    CHECK_OK(rpu_ckpt_open(a, &fa));
    CHECK_OK(rpu_ckpt_open(b, &fb));
    if (!fa || !fb) goto out;
    CHECK(rpu_ckpt_file_info(fa)->step == rpu_ckpt_file_info(fb)->step, "%s, %s: steps differ", a,
          b);
    for (int li = 0; li < rpu_ckpt_file_layer_count(fa); ++li) {
        rpu_ckpt_layer_desc d;
        rpu_ckpt_file_layer(fa, li, &d);
        for (int t = 0; t < d.n_tiles; ++t) {
            rpu_ckpt_item_desc it[RPU_TILE_MAX_STATE_ITEMS];
            int ni = 0;
            CHECK_OK(rpu_ckpt_file_tile_items(fa, li, t, it, RPU_TILE_MAX_STATE_ITEMS, &ni));
            char key[48];
            rpu_ckpt_tile_key(&d, t, key);
            /* the names are the file's until its next call: copied before the reads */
            char names[RPU_TILE_MAX_STATE_ITEMS][48];
            for (int k = 0; k < ni && k < RPU_TILE_MAX_STATE_ITEMS; ++k)
                snprintf(names[k], sizeof names[k], "%s", it[k].name);
            for (int k = 0; k < ni && k < RPU_TILE_MAX_STATE_ITEMS; ++k) {
                char p[320];
                snprintf(p, sizeof p, "layers/%.63s/tiles/%.47s/%.47s", d.name, key, names[k]);
                double *va = NULL, *vb = NULL;
                int nda, ndb;
                int64_t da[RPU_CKPT_MAX_DIMS], db[RPU_CKPT_MAX_DIMS];
                CHECK_OK(rpu_ckpt_file_read(fa, p, &va, &nda, da));
                CHECK_OK(rpu_ckpt_file_read(fb, p, &vb, &ndb, db));
                ++n;
                size_t cnt = 1;
                for (int q = 0; q < nda; ++q)
                    cnt *= (size_t)da[q];
                if (!va || !vb || nda != ndb || memcmp(da, db, sizeof(int64_t) * (size_t)nda) ||
                    memcmp(va, vb, sizeof(double) * cnt)) {
                    if (!*bad) snprintf(first, cap, "%s", p);
                    ++*bad;
                }
                free(va), free(vb);
            }
        }
    }
out:
    rpu_ckpt_close(&fa);
    rpu_ckpt_close(&fb);
    return n;
}
