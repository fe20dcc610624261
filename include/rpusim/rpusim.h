/* rpusim — umbrella header: includes every public header of the library.
 *
 *     #include <rpusim/rpusim.h>
 *
 * Each module's header documents its functions; see DESIGN.md for the module order.
 *
 * Conventions of the whole API (each header states how they apply to its functions):
 *   1. Errors. Every function that can fail returns rpu_status (RPU_OK = 0) and records a
 *      message for rpu_last_error() that names what failed in the caller's terms (config
 *      key, file and line, layer name and tile, checkpoint object); the source location is
 *      kept apart (rpu_last_error_location) and appended only in Debug builds or with the
 *      environment variable RPUSIM_ERROR_LOCATION=1. The library never exits or aborts.
 *   2. Collectivity. Every function's comment says "collective" (every rank of the
 *      object's communicator calls it, in the same order, with the same arguments) or
 *      "local" (any rank alone). Functions of modules without MPI (rng, config, tile,
 *      mapping, digital, data) are all local.
 *   3. Objects. Create/destroy pairs; destroy takes T **, sets it to NULL and accepts NULL.
 *      Accessors return copies or const pointers; no function hands out a writable pointer
 *      into a layer (a tile handle from rpu_conv_tile is an object with its own API).
 *   4. Layouts follow PyTorch: float32 row-major, inputs [N, C, spatial...], conv weights
 *      [out, in/groups, k...], linear weights [out, in].
 *   5. Bias. A layer's bias kind (none, digital, analog) is one field of its parameters
 *      (rpu_bias); every function taking a bias array wants it exactly when the layer has
 *      a bias and NULL when it has none (layer.h).
 *   6. Parameters. Every parameter struct has a *_params_default() that fills the aihwkit
 *      defaults; sizes derived from parameters are computable without creating an object
 *      (rpu_conv_output_size, rpu_conv_tile_size, rpu_pool_output_size).
 *   7. Modes are named enums, not positional booleans (rpu_weight_read,
 *      rpu_weight_units, rpu_pass_mode); one name per operation (aihwkit's to_digital is
 *      rpu_conv_get_weights, its from_digital rpu_conv_from_digital).
 *   8. No global mutable state: random numbers come from keyed streams, the only static
 *      storage is the thread-local error record; results do not depend on the rank count.
 */
#ifndef RPUSIM_RPUSIM_H
#define RPUSIM_RPUSIM_H

#include "rpusim/status.h"
#include "rpusim/rng.h"
#include "rpusim/config.h"
#include "rpusim/tile.h"
#include "rpusim/mapping.h"
#include "rpusim/layer.h"
#include "rpusim/ckpt.h"
#include "rpusim/digital.h"
#include "rpusim/readout.h"
#include "rpusim/data.h"
#include "rpusim/net.h"

#endif
