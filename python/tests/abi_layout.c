/* Prints the size of each C structure that python/rpusim/_capi.py mirrors with ctypes and
 * the offset of each field, one "name value" per line, for python/tests/test_abi.py:
 *     struct rpu_conv_params 128
 *     field rpu_conv_params.kernel 12
 *     enum rpu_bias 4
 * Built by python/CMakeLists.txt (target rpusim_abi_layout); the test finds it through
 * $RPUSIM_ABI_LAYOUT. */
#include <stddef.h>
#include <stdio.h>

#include "rpusim/layer.h"

#define S(T) printf("struct %s %zu\n", #T, sizeof(T))
#define F(T, f) printf("field %s.%s %zu\n", #T, #f, offsetof(T, f))
#define E(T) printf("enum %s %zu\n", #T, sizeof(T))

int main(void) {
    S(rpu_conv_params);
    F(rpu_conv_params, ndim);
    F(rpu_conv_params, in_channels);
    F(rpu_conv_params, out_channels);
    F(rpu_conv_params, kernel);
    F(rpu_conv_params, stride);
    F(rpu_conv_params, padding);
    F(rpu_conv_params, dilation);
    F(rpu_conv_params, groups);
    F(rpu_conv_params, bias);
    F(rpu_conv_params, padding_mode);
    F(rpu_conv_params, use_indexed);
    F(rpu_conv_params, layer_id);
    F(rpu_conv_params, seed);
    F(rpu_conv_params, mac);
    F(rpu_conv_params, name);
    F(rpu_conv_params, split);

    S(rpu_linear_params);
    F(rpu_linear_params, in_features);
    F(rpu_linear_params, out_features);
    F(rpu_linear_params, bias);
    F(rpu_linear_params, layer_id);
    F(rpu_linear_params, seed);
    F(rpu_linear_params, mac);
    F(rpu_linear_params, name);
    F(rpu_linear_params, split);

    S(rpu_tile_slot);
    F(rpu_tile_slot, group);
    F(rpu_tile_slot, in_split);
    F(rpu_tile_slot, out_split);
    F(rpu_tile_slot, in_ch0);
    F(rpu_tile_slot, in_ch);
    F(rpu_tile_slot, out_ch0);
    F(rpu_tile_slot, out_ch);
    F(rpu_tile_slot, col0);
    F(rpu_tile_slot, ncol);
    F(rpu_tile_slot, rows);
    F(rpu_tile_slot, cols);
    F(rpu_tile_slot, owner);
    F(rpu_tile_slot, holders);

    S(rpu_tile_grid);
    F(rpu_tile_grid, groups);
    F(rpu_tile_grid, n_in);
    F(rpu_tile_grid, n_out);
    F(rpu_tile_grid, n_tiles);
    F(rpu_tile_grid, kernel_elems);
    F(rpu_tile_grid, in_per_group);
    F(rpu_tile_grid, out_per_group);
    F(rpu_tile_grid, analog_bias);
    F(rpu_tile_grid, split);
    F(rpu_tile_grid, in_share);
    F(rpu_tile_grid, tiles);

    S(rpu_program_params);
    F(rpu_program_params, learning_rate);
    F(rpu_program_params, max_iter);
    F(rpu_program_params, tolerance);
    F(rpu_program_params, w_init);

    E(rpu_bias);
    E(rpu_padding_mode);
    E(rpu_weight_read);
    E(rpu_mac_mode);
    E(rpu_status);
    printf("const RPU_LAYER_NAME_MAX %d\n", RPU_LAYER_NAME_MAX);
    return 0;
}
