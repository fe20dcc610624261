/* A PMPI wrapper that records the MPI calls of a process (mpi_tests/pmpi_count.c).
 *
 * It defines MPI_Send, MPI_Allreduce, ... (every point-to-point and collective call, and the
 * communicator constructors) and passes each to its PMPI_ twin. While recording is on,
 * each call is kept as (operation, element count, bytes per element, communicator size,
 * root or peer) in the terms of the communication plan of include/rpusim/layer.h
 * (rpu_comm_call): the element count of a call that moves pieces (reduce_scatter,
 * allgather) is the sum of the pieces; a call the plan has no operation for (gather,
 * alltoall (MPI_Alltoallv is RPU_COMM_ALLTOALL), scan, communicator creation, ...) is
 * RPU_COMM_OTHER.
 *
 * Two ways to use it:
 *   - linked into a test program (mpi_tests/test_comm_plan.c): the test switches recording
 *     with pc_record() or MPI_Pcontrol(1 / 0) and reads the calls with pc_calls();
 *   - preloaded into any MPI program (LD_PRELOAD=libpmpi_count.so, built from the same
 *     file): MPI_Pcontrol(1) starts and MPI_Pcontrol(0) stops recording, and with the
 *     environment variable PMPI_COUNT_OUT=PREFIX every rank writes PREFIX.<rank> at
 *     MPI_Finalize: a line "mark,LEVEL" per MPI_Pcontrol call and a line
 *     "call,OP,COUNT,TYPE_BYTES,GROUP,PEER" per recorded call (OP by rpu_comm_op_name).
 *     `rpusim bench scale` brackets each measured training step with MPI_Pcontrol.
 *
 * Test code: the record is process-global (a PMPI wrapper cannot be otherwise). */
#ifndef RPUSIM_PMPI_COUNT_H
#define RPUSIM_PMPI_COUNT_H

#include <stdint.h>

typedef struct {
    int op;         /* rpu_comm_op */
    int64_t count;  /* elements */
    int type_bytes; /* bytes per element (0 for a barrier) */
    int group;      /* communicator size */
    int peer;       /* root or peer rank, -1 if none */
} pc_call;

/* Recording on (1) or off (0); MPI_Pcontrol(level) does the same. */
void pc_record(int on);
/* Forgets the calls recorded so far. */
void pc_reset(void);
/* The calls recorded since the last pc_reset (valid until the next MPI call). */
int pc_calls(const pc_call **calls);
/* The wrapper's name of operation op (the same words as rpu_comm_op_name). */
const char *pc_op_name(int op);

#endif
