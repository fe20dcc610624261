/* rpusim — umbrella header: includes every public header of the library.
 *
 *     #include <rpusim/rpusim.h>
 *
 * Each module's header documents its functions; see DESIGN.md for the module order. */
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

#endif
