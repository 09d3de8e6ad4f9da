/* PID 1 inside a container (see pid1.h). Every signal is blocked and taken with
 * sigwaitinfo, so there is no handler and no race between a child's exit and the wait. */
#include "runtime/pid1.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int pid1_main(int argc, char **argv)
{
	int first = 1;
	if (first < argc && !strcmp(argv[first], "--"))
		first++;
	if (first >= argc) {
		fprintf(stderr, "%s: usage: %s [--] command [args...]\n", PID1_ARGV0, PID1_ARGV0);
		return 2;
	}
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t child = fork();
	if (child < 0) {
		fprintf(stderr, "%s: fork: %s\n", PID1_ARGV0, strerror(errno));
		return 1;
	}
	if (child == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(argv[first], argv + first);
		fprintf(stderr, "%s: exec %s: %s\n", PID1_ARGV0, argv[first], strerror(errno));
		_exit(127);
	}
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(child, sig); /* the command decides what a signal means */
			continue;
		}
		int st;
		pid_t p;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0)
			if (p == child)
				return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
}
