/* Prints the size of each C structure of include/rpusim/ckpt.h that
 * python/rpusim/_capi_ckpt.py mirrors with ctypes and the offset of each field, one
 * "kind name value" per line as abi_layout.c does, for python/tests/test_ckpt_abi.py.
 * Built by python/CMakeLists.txt (target rpusim_abi_ckpt_layout); the test finds it
 * through $RPUSIM_ABI_CKPT_LAYOUT. */
#include <stddef.h>
#include <stdio.h>

#include "rpusim/ckpt.h"

#define S(T) printf("struct %s %zu\n", #T, sizeof(T))
#define F(T, f) printf("field %s.%s %zu\n", #T, #f, offsetof(T, f))
#define E(T) printf("enum %s %zu\n", #T, sizeof(T))

int main(void) {
    S(rpu_ckpt_layer);
    F(rpu_ckpt_layer, name);
    F(rpu_ckpt_layer, layer);

    S(rpu_ckpt_array);
    F(rpu_ckpt_array, path);
    F(rpu_ckpt_array, dtype);
    F(rpu_ckpt_array, ndim);
    F(rpu_ckpt_array, dims);
    F(rpu_ckpt_array, data);
    F(rpu_ckpt_array, optional);
    F(rpu_ckpt_array, check_shape);

    S(rpu_ckpt_meta);
    F(rpu_ckpt_meta, seed);
    F(rpu_ckpt_meta, step);
    F(rpu_ckpt_meta, epoch);
    F(rpu_ckpt_meta, config);

    S(rpu_ckpt_info);
    F(rpu_ckpt_info, schema_version);
    F(rpu_ckpt_info, rpusim_version);
    F(rpu_ckpt_info, seed);
    F(rpu_ckpt_info, step);
    F(rpu_ckpt_info, epoch);
    F(rpu_ckpt_info, ranks_at_save);
    F(rpu_ckpt_info, config);

    S(rpu_ckpt_save_opts);
    F(rpu_ckpt_save_opts, keep_last);
    F(rpu_ckpt_save_opts, fail_rank);
    F(rpu_ckpt_save_opts, fail_write);
    F(rpu_ckpt_save_opts, skip_free_space_check);

    E(rpu_ckpt_dtype);
    printf("const RPU_CKPT_MAX_DIMS %d\n", RPU_CKPT_MAX_DIMS);
    printf("const RPU_CKPT_MAX_TEXT %d\n", RPU_CKPT_MAX_TEXT);
    printf("const RPU_CKPT_F32 %d\nconst RPU_CKPT_F64 %d\nconst RPU_CKPT_I32 %d\n", RPU_CKPT_F32,
           RPU_CKPT_F64, RPU_CKPT_I32);
    printf("const RPU_CKPT_I64 %d\nconst RPU_CKPT_U64 %d\nconst RPU_CKPT_U8 %d\n", RPU_CKPT_I64,
           RPU_CKPT_U64, RPU_CKPT_U8);
    return 0;
}
