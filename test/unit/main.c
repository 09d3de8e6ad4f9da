#include "unit.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static struct unit_case *head, **tail = &head;

void unit_register(struct unit_case *c)
{
	*tail = c;
	tail = &c->next;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;
	if (argc > 1 && !strcmp(argv[1], UNIT_PROBE_ARG))
		return unit_probe_syscalls();
	for (struct unit_case *c = head; c; c = c->next) {
		if (argc > 1 && !strstr(c->name, argv[1]))
			continue;
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			alarm(30);
			c->fn();
			exit(0);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
		printf("%s %s", ok ? "ok  " : "FAIL", c->name);
		if (WIFSIGNALED(st))
			printf(" (signal %d)", WTERMSIG(st));
		printf("\n");
		ok ? passed++ : failed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
