/* PMPI wrapper recording MPI calls (see pmpi_count.h). Every wrapper records while
 * recording is on and forwards to PMPI_<name> with the same arguments. */
#define _POSIX_C_SOURCE 200809L
#include "pmpi_count.h"

#include "rpusim/layer.h" /* rpu_comm_op: the numbers only (no library code is called) */

#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int g_on;
static pc_call *g_calls;
static int g_n, g_cap;
static FILE *g_out; /* PMPI_COUNT_OUT: the per-rank log, opened at the first mark */
static int g_out_tried;

const char *pc_op_name(int op) {
    static const char *const names[RPU_COMM_N_OPS] = {
        "allreduce", "reduce", "bcast",   "reduce_scatter", "allgather",
        "send",      "recv",   "barrier", "alltoall",       "other"};
    return op >= 0 && op < RPU_COMM_N_OPS ? names[op] : "?";
}

void pc_record(int on) {
    g_on = on;
}

void pc_reset(void) {
    g_n = 0;
}

int pc_calls(const pc_call **calls) {
    if (calls) *calls = g_calls;
    return g_n;
}

/* The log of PMPI_COUNT_OUT (NULL without it). */
static FILE *out_file(void) {
    if (!g_out_tried) {
        g_out_tried = 1;
        const char *prefix = getenv("PMPI_COUNT_OUT");
        if (prefix && *prefix) {
            int rank = 0;
            PMPI_Comm_rank(MPI_COMM_WORLD, &rank);
            char path[4096];
            snprintf(path, sizeof path, "%s.%d", prefix, rank);
            g_out = fopen(path, "w");
            if (!g_out) fprintf(stderr, "pmpi_count: cannot write %s\n", path);
        }
    }
    return g_out;
}

static void record(int op, int64_t count, MPI_Datatype type, MPI_Comm comm, int peer) {
    if (!g_on) return;
    int tb = 0, group = 0;
    if (type != MPI_DATATYPE_NULL) PMPI_Type_size(type, &tb);
    if (comm != MPI_COMM_NULL) PMPI_Comm_size(comm, &group);
    if (g_n == g_cap) {
        const int cap = g_cap ? 2 * g_cap : 256;
        pc_call *c = realloc(g_calls, sizeof *c * (size_t)cap);
        if (!c) {
            fprintf(stderr, "pmpi_count: out of memory\n");
            abort();
        }
        g_calls = c, g_cap = cap;
    }
    g_calls[g_n++] = (pc_call){op, count, tb, group, peer};
    FILE *f = out_file();
    if (f) fprintf(f, "call,%s,%lld,%d,%d,%d\n", pc_op_name(op), (long long)count, tb, group, peer);
}

/* The sum of counts[0..size of comm). */
static int64_t sum_counts(const int counts[], MPI_Comm comm) {
    int n = 0;
    PMPI_Comm_size(comm, &n);
    int64_t s = 0;
    for (int k = 0; k < n; ++k)
        s += counts[k];
    return s;
}

static int comm_size(MPI_Comm comm) {
    int n = 0;
    PMPI_Comm_size(comm, &n);
    return n;
}

int MPI_Pcontrol(const int level, ...) {
    g_on = level != 0;
    FILE *f = out_file();
    if (f) fprintf(f, "mark,%d\n", level);
    return MPI_SUCCESS;
}

int MPI_Finalize(void) {
    if (g_out) fclose(g_out);
    g_out = NULL;
    free(g_calls);
    g_calls = NULL;
    g_n = g_cap = 0;
    return PMPI_Finalize();
}

/* ------------------------------------------------------------------ point to point */

int MPI_Send(const void *buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm) {
    record(RPU_COMM_SEND, count, type, comm, dest);
    return PMPI_Send(buf, count, type, dest, tag, comm);
}
int MPI_Ssend(const void *buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm) {
    record(RPU_COMM_SEND, count, type, comm, dest);
    return PMPI_Ssend(buf, count, type, dest, tag, comm);
}
int MPI_Rsend(const void *buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm) {
    record(RPU_COMM_SEND, count, type, comm, dest);
    return PMPI_Rsend(buf, count, type, dest, tag, comm);
}
int MPI_Bsend(const void *buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm) {
    record(RPU_COMM_SEND, count, type, comm, dest);
    return PMPI_Bsend(buf, count, type, dest, tag, comm);
}
int MPI_Isend(const void *buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm,
              MPI_Request *req) {
    record(RPU_COMM_SEND, count, type, comm, dest);
    return PMPI_Isend(buf, count, type, dest, tag, comm, req);
}
int MPI_Recv(void *buf, int count, MPI_Datatype type, int source, int tag, MPI_Comm comm,
             MPI_Status *status) {
    record(RPU_COMM_RECV, count, type, comm, source);
    return PMPI_Recv(buf, count, type, source, tag, comm, status);
}
int MPI_Irecv(void *buf, int count, MPI_Datatype type, int source, int tag, MPI_Comm comm,
              MPI_Request *req) {
    record(RPU_COMM_RECV, count, type, comm, source);
    return PMPI_Irecv(buf, count, type, source, tag, comm, req);
}
int MPI_Sendrecv(const void *sbuf, int scount, MPI_Datatype stype, int dest, int stag, void *rbuf,
                 int rcount, MPI_Datatype rtype, int source, int rtag, MPI_Comm comm,
                 MPI_Status *status) {
    record(RPU_COMM_SEND, scount, stype, comm, dest);
    record(RPU_COMM_RECV, rcount, rtype, comm, source);
    return PMPI_Sendrecv(sbuf, scount, stype, dest, stag, rbuf, rcount, rtype, source, rtag, comm,
                         status);
}
int MPI_Sendrecv_replace(void *buf, int count, MPI_Datatype type, int dest, int stag, int source,
                         int rtag, MPI_Comm comm, MPI_Status *status) {
    record(RPU_COMM_SEND, count, type, comm, dest);
    record(RPU_COMM_RECV, count, type, comm, source);
    return PMPI_Sendrecv_replace(buf, count, type, dest, stag, source, rtag, comm, status);
}

/* ------------------------------------------------------------------ collectives */

int MPI_Allreduce(const void *sbuf, void *rbuf, int count, MPI_Datatype type, MPI_Op op,
                  MPI_Comm comm) {
    record(RPU_COMM_ALLREDUCE, count, type, comm, -1);
    return PMPI_Allreduce(sbuf, rbuf, count, type, op, comm);
}
int MPI_Iallreduce(const void *sbuf, void *rbuf, int count, MPI_Datatype type, MPI_Op op,
                   MPI_Comm comm, MPI_Request *req) {
    record(RPU_COMM_ALLREDUCE, count, type, comm, -1);
    return PMPI_Iallreduce(sbuf, rbuf, count, type, op, comm, req);
}
int MPI_Reduce(const void *sbuf, void *rbuf, int count, MPI_Datatype type, MPI_Op op, int root,
               MPI_Comm comm) {
    record(RPU_COMM_REDUCE, count, type, comm, root);
    return PMPI_Reduce(sbuf, rbuf, count, type, op, root, comm);
}
int MPI_Ireduce(const void *sbuf, void *rbuf, int count, MPI_Datatype type, MPI_Op op, int root,
                MPI_Comm comm, MPI_Request *req) {
    record(RPU_COMM_REDUCE, count, type, comm, root);
    return PMPI_Ireduce(sbuf, rbuf, count, type, op, root, comm, req);
}
int MPI_Bcast(void *buf, int count, MPI_Datatype type, int root, MPI_Comm comm) {
    record(RPU_COMM_BCAST, count, type, comm, root);
    return PMPI_Bcast(buf, count, type, root, comm);
}
int MPI_Ibcast(void *buf, int count, MPI_Datatype type, int root, MPI_Comm comm, MPI_Request *req) {
    record(RPU_COMM_BCAST, count, type, comm, root);
    return PMPI_Ibcast(buf, count, type, root, comm, req);
}
int MPI_Reduce_scatter(const void *sbuf, void *rbuf, const int rcounts[], MPI_Datatype type,
                       MPI_Op op, MPI_Comm comm) {
    record(RPU_COMM_REDUCE_SCATTER, sum_counts(rcounts, comm), type, comm, -1);
    return PMPI_Reduce_scatter(sbuf, rbuf, rcounts, type, op, comm);
}
int MPI_Ireduce_scatter(const void *sbuf, void *rbuf, const int rcounts[], MPI_Datatype type,
                        MPI_Op op, MPI_Comm comm, MPI_Request *req) {
    record(RPU_COMM_REDUCE_SCATTER, sum_counts(rcounts, comm), type, comm, -1);
    return PMPI_Ireduce_scatter(sbuf, rbuf, rcounts, type, op, comm, req);
}
int MPI_Reduce_scatter_block(const void *sbuf, void *rbuf, int rcount, MPI_Datatype type, MPI_Op op,
                             MPI_Comm comm) {
    record(RPU_COMM_REDUCE_SCATTER, (int64_t)rcount * comm_size(comm), type, comm, -1);
    return PMPI_Reduce_scatter_block(sbuf, rbuf, rcount, type, op, comm);
}
int MPI_Ireduce_scatter_block(const void *sbuf, void *rbuf, int rcount, MPI_Datatype type,
                              MPI_Op op, MPI_Comm comm, MPI_Request *req) {
    record(RPU_COMM_REDUCE_SCATTER, (int64_t)rcount * comm_size(comm), type, comm, -1);
    return PMPI_Ireduce_scatter_block(sbuf, rbuf, rcount, type, op, comm, req);
}
int MPI_Allgather(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount,
                  MPI_Datatype rtype, MPI_Comm comm) {
    record(RPU_COMM_ALLGATHER, (int64_t)rcount * comm_size(comm), rtype, comm, -1);
    return PMPI_Allgather(sbuf, scount, stype, rbuf, rcount, rtype, comm);
}
int MPI_Iallgather(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount,
                   MPI_Datatype rtype, MPI_Comm comm, MPI_Request *req) {
    record(RPU_COMM_ALLGATHER, (int64_t)rcount * comm_size(comm), rtype, comm, -1);
    return PMPI_Iallgather(sbuf, scount, stype, rbuf, rcount, rtype, comm, req);
}
int MPI_Allgatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf,
                   const int rcounts[], const int displs[], MPI_Datatype rtype, MPI_Comm comm) {
    record(RPU_COMM_ALLGATHER, sum_counts(rcounts, comm), rtype, comm, -1);
    return PMPI_Allgatherv(sbuf, scount, stype, rbuf, rcounts, displs, rtype, comm);
}
int MPI_Iallgatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf,
                    const int rcounts[], const int displs[], MPI_Datatype rtype, MPI_Comm comm,
                    MPI_Request *req) {
    record(RPU_COMM_ALLGATHER, sum_counts(rcounts, comm), rtype, comm, -1);
    return PMPI_Iallgatherv(sbuf, scount, stype, rbuf, rcounts, displs, rtype, comm, req);
}
int MPI_Barrier(MPI_Comm comm) {
    record(RPU_COMM_BARRIER, 0, MPI_DATATYPE_NULL, comm, -1);
    return PMPI_Barrier(comm);
}
int MPI_Ibarrier(MPI_Comm comm, MPI_Request *req) {
    record(RPU_COMM_BARRIER, 0, MPI_DATATYPE_NULL, comm, -1);
    return PMPI_Ibarrier(comm, req);
}

/* ------------------------------------------------------------------ no plan operation:
 * recorded as RPU_COMM_OTHER (a plan never holds one, so a step that issues them fails
 * the comparison until the plan learns the operation) */

int MPI_Gather(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount,
               MPI_Datatype rtype, int root, MPI_Comm comm) {
    record(RPU_COMM_OTHER, scount, stype, comm, root);
    return PMPI_Gather(sbuf, scount, stype, rbuf, rcount, rtype, root, comm);
}
int MPI_Gatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int rcounts[],
                const int displs[], MPI_Datatype rtype, int root, MPI_Comm comm) {
    record(RPU_COMM_OTHER, scount, stype, comm, root);
    return PMPI_Gatherv(sbuf, scount, stype, rbuf, rcounts, displs, rtype, root, comm);
}
int MPI_Scatter(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount,
                MPI_Datatype rtype, int root, MPI_Comm comm) {
    record(RPU_COMM_OTHER, rcount, rtype, comm, root);
    return PMPI_Scatter(sbuf, scount, stype, rbuf, rcount, rtype, root, comm);
}
int MPI_Scatterv(const void *sbuf, const int scounts[], const int displs[], MPI_Datatype stype,
                 void *rbuf, int rcount, MPI_Datatype rtype, int root, MPI_Comm comm) {
    record(RPU_COMM_OTHER, rcount, rtype, comm, root);
    return PMPI_Scatterv(sbuf, scounts, displs, stype, rbuf, rcount, rtype, root, comm);
}
int MPI_Alltoall(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount,
                 MPI_Datatype rtype, MPI_Comm comm) {
    record(RPU_COMM_OTHER, (int64_t)scount * comm_size(comm), stype, comm, -1);
    return PMPI_Alltoall(sbuf, scount, stype, rbuf, rcount, rtype, comm);
}
int MPI_Alltoallv(const void *sbuf, const int scounts[], const int sdispls[], MPI_Datatype stype,
                  void *rbuf, const int rcounts[], const int rdispls[], MPI_Datatype rtype,
                  MPI_Comm comm) {
    record(RPU_COMM_ALLTOALL, sum_counts(scounts, comm), stype, comm, -1);
    return PMPI_Alltoallv(sbuf, scounts, sdispls, stype, rbuf, rcounts, rdispls, rtype, comm);
}
int MPI_Scan(const void *sbuf, void *rbuf, int count, MPI_Datatype type, MPI_Op op, MPI_Comm comm) {
    record(RPU_COMM_OTHER, count, type, comm, -1);
    return PMPI_Scan(sbuf, rbuf, count, type, op, comm);
}
int MPI_Exscan(const void *sbuf, void *rbuf, int count, MPI_Datatype type, MPI_Op op,
               MPI_Comm comm) {
    record(RPU_COMM_OTHER, count, type, comm, -1);
    return PMPI_Exscan(sbuf, rbuf, count, type, op, comm);
}
int MPI_Comm_dup(MPI_Comm comm, MPI_Comm *newcomm) {
    record(RPU_COMM_OTHER, 0, MPI_DATATYPE_NULL, comm, -1);
    return PMPI_Comm_dup(comm, newcomm);
}
int MPI_Comm_split(MPI_Comm comm, int color, int key, MPI_Comm *newcomm) {
    record(RPU_COMM_OTHER, 0, MPI_DATATYPE_NULL, comm, -1);
    return PMPI_Comm_split(comm, color, key, newcomm);
}
int MPI_Comm_create(MPI_Comm comm, MPI_Group group, MPI_Comm *newcomm) {
    record(RPU_COMM_OTHER, 0, MPI_DATATYPE_NULL, comm, -1);
    return PMPI_Comm_create(comm, group, newcomm);
}
