/* A minimal init for tasks of services with init: true: the orch binary is bind-mounted
 * into the container at BUNDLE_INIT_PATH and runs as its PID 1, starts the service's
 * command as its child, forwards the signals it gets to that child, reaps every orphan
 * that the command's own children leave, and exits with the child's status (128 + the
 * signal number when it was killed), as Docker's --init does. */
#ifndef ORCH_PID1_H
#define ORCH_PID1_H

#define PID1_ARGV0 ".orch-init" /* main.c runs pid1_main when called by this name */

/* argv: PID1_ARGV0 [--] command [args...]. Returns the exit status. */
int pid1_main(int argc, char **argv);

#endif
