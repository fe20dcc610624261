/* Private: agreeing on a status across ranks. */
#ifndef RPUSIM_AGREE_IMPL_H
#define RPUSIM_AGREE_IMPL_H

#include <mpi.h>

#include "rpusim/status.h"

/* Every rank gets the status and message of the lowest failing rank (collective on comm);
 * with more than one rank the message names that rank ("... (on rank r)"). RPU_OK when no
 * rank failed. */
rpu_status rpu_agree(MPI_Comm comm, rpu_status local);

#endif
