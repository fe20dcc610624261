/* Unit cells inside a compound for the tests (compound spec §1.2; README "Compounds inside
 * compounds"): the two sub-devices of a transfer-family compound whose fast device A is a
 * vector cell (single_random over two soft_bounds devices, so the cell draws a device per
 * vector) and whose slow device C is a one_sided cell of constant_step devices (w_max 0.2)
 * refreshing after every update call with low thresholds, so that refreshes happen within a
 * few steps; and a transfer compound of two reference cells. Used by test_compound_nested,
 * test_net_compound and test_ckpt_restart. */
#ifndef RPUSIM_TEST_NESTED_CELLS_H
#define RPUSIM_TEST_NESTED_CELLS_H

#define TEST_CELLS_VECTOR_AND_ONE_SIDED                                                            \
    "device.unit_cell_devices.0.type = vector\n"                                                   \
    "device.unit_cell_devices.0.update_policy = single_random\n"                                   \
    "device.unit_cell_devices.0.unit_cell_devices.0.type = soft_bounds\n"                          \
    "device.unit_cell_devices.0.unit_cell_devices.1.type = soft_bounds\n"                          \
    "device.unit_cell_devices.1.type = one_sided\n"                                                \
    "device.unit_cell_devices.1.refresh_every = 1\n"                                               \
    "device.unit_cell_devices.1.refresh_upper_thres = 0.05\n"                                      \
    "device.unit_cell_devices.1.refresh_lower_thres = 0.01\n"                                      \
    "device.unit_cell_devices.1.unit_cell_devices.0.type = constant_step\n"                        \
    "device.unit_cell_devices.1.unit_cell_devices.0.w_max = 0.2\n"

/* The two sub-devices of a transfer compound that are each a reference cell of two
 * soft_bounds devices (aihwkit's TransferCompound of two ReferenceUnitCells, the compound
 * spec's §1.3 naming example). */
#define TEST_CELLS_TWO_REFERENCE                                                                   \
    "device.unit_cell_devices.0.type = reference\n"                                                \
    "device.unit_cell_devices.0.unit_cell_devices.0.type = soft_bounds\n"                          \
    "device.unit_cell_devices.0.unit_cell_devices.1.type = soft_bounds\n"                          \
    "device.unit_cell_devices.1.type = reference\n"                                                \
    "device.unit_cell_devices.1.unit_cell_devices.0.type = soft_bounds\n"                          \
    "device.unit_cell_devices.1.unit_cell_devices.1.type = soft_bounds\n"

#endif
