/* Agreement on the outcome of a step across the ranks of a communicator. */
#include "agree_impl.h"
#include "error_impl.h"

#include <stdio.h>
#include <string.h>

#define AGREE_MSG 1024

/* Every rank gets the status and message of the lowest failing rank (collective). With
 * more than one rank the message names that rank, so the text is the same everywhere. */
rpu_status rpu_agree(MPI_Comm comm, rpu_status local) {
    int rank, size;
    if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS || MPI_Comm_size(comm, &size) != MPI_SUCCESS)
        return RPU_FAIL(RPU_ERR_MPI, "rpu_agree: MPI_Comm_rank/size failed");
    int mine = local != RPU_OK ? rank : size, first = size;
    if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
        return RPU_FAIL(RPU_ERR_MPI, "rpu_agree: MPI_Allreduce (status) failed");
    if (first == size) return RPU_OK;
    struct {
        int st;
        char msg[AGREE_MSG];
        char where[128];
    } m;
    memset(&m, 0, sizeof m);
    if (rank == first) {
        m.st = (int)local;
        snprintf(m.msg, sizeof m.msg, "%s", rpu_error_message());
        snprintf(m.where, sizeof m.where, "%s", rpu_last_error_location());
    }
    if (MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, first, comm) != MPI_SUCCESS)
        return RPU_FAIL(RPU_ERR_MPI, "rpu_agree: MPI_Bcast (status) failed");
    m.msg[AGREE_MSG - 1] = '\0';
    m.where[sizeof m.where - 1] = '\0';
    if (size == 1) return (rpu_status)m.st;
    /* "text (on rank r)", keeping the location where that rank detected it */
    char text[AGREE_MSG + 32];
    snprintf(text, sizeof text, "%s (on rank %d)", m.msg, first);
    return rpu_error_set((rpu_status)m.st, text, m.where);
}
