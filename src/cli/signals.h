/* SIGTERM / SIGUSR1 handling of `rpusim train` (src/cli/signals.c). */
#ifndef RPUSIM_CLI_SIGNALS_H
#define RPUSIM_CLI_SIGNALS_H

/* Exit code of `rpusim train` when a signal (SIGTERM, SIGUSR1) stopped it and its state is
 * in the checkpoint: resume with --resume (EX_TEMPFAIL of sysexits.h: "try again later").
 * A second signal exits at once with 128 + the signal number. */
#define CLI_EXIT_STOPPED 75

/* Installs the SIGTERM and SIGUSR1 handlers: the first signal sets a flag, a second one
 * calls _exit(128 + signal). verbose: print a notice on stderr when the first signal
 * arrives (every rank reports a second one). Returns 0, or -1 if sigaction failed. */
int cli_signals_install(int verbose);
/* Restores the default action of SIGTERM and SIGUSR1 (training is over: mpiexec ends the
 * other ranks of a run that failed with SIGTERM, which must not print a notice). */
void cli_signals_restore(void);
/* The first signal received (SIGTERM or SIGUSR1), 0 if none. */
int cli_signal_received(void);
const char *cli_signal_name(int sig);

#endif
