/* SIGTERM / SIGUSR1 during `rpusim train`: the first signal sets a flag that the training
 * loop polls after every step (it then checkpoints and the command exits with
 * CLI_EXIT_STOPPED); a second signal exits at once with 128 + signal number. The
 * checkpoint being written at that moment is a <path>.tmp that is only renamed into place
 * when complete, so the previous checkpoint stays intact. */
#define _POSIX_C_SOURCE 200809L
#include "signals.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

/* The first signal received, 0: none. Atomic, exchanged in the handler: the process has
 * several threads (Open MPI's), and two signals can be handled at the same time by two of
 * them (sa_mask blocks the other signal only in the thread that runs the handler); with
 * a plain flag both could see "none" and neither would exit. Lock-free, as a handler
 * needs. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the signal flag must be lock-free");
static atomic_int g_signal = 0;
static int g_verbose = 0; /* print the first signal's notice (rank 0) */

static void say(const char *a, const char *b) {
    /* write(2) is async-signal-safe; stdio is not */
    ssize_t r = write(STDERR_FILENO, a, strlen(a));
    r = write(STDERR_FILENO, b, strlen(b));
    (void)r;
}

static void on_signal(int sig) {
    const char *name = sig == SIGTERM ? "SIGTERM" : "SIGUSR1";
    if (atomic_exchange(&g_signal, sig) != 0) {
        say("rpusim: second signal ", name);
        say(": exiting at once (the previous checkpoint is kept)\n", "");
        _exit(128 + sig);
    }
    if (!g_verbose) return;
    say("rpusim: ", name);
    say(" received: stopping after the current step and writing a checkpoint (a second "
        "signal exits at once)\n",
        "");
}

int cli_signals_install(int verbose) {
    g_verbose = verbose;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGUSR1);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGUSR1, &sa, NULL) != 0) return -1;
    return 0;
}

void cli_signals_restore(void) {
    signal(SIGTERM, SIG_DFL);
    signal(SIGUSR1, SIG_DFL);
}

int cli_signal_received(void) {
    return atomic_load(&g_signal);
}

const char *cli_signal_name(int sig) {
    return sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1" : "a signal";
}
