/* orch exec: a command in a running task (node/execfan.h), its output on ours, our
 * input streamed to it (-i), on a terminal (-t) that follows our window's size; orch exits
 * with the command's exit code. */
#include "cli/cli.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#define INPUT_CHUNK 16384

static int winch_pipe[2] = {-1, -1};
static struct termios saved;
static bool raw_on;

static void on_winch(int sig)
{
	(void)sig;
	int e = errno;
	if (write(winch_pipe[1], "w", 1) < 0) { /* full: a resize is pending already */
	}
	errno = e;
}

static void restore_tty(void)
{
	if (raw_on)
		tcsetattr(STDIN_FILENO, TCSADRAIN, &saved);
	raw_on = false;
}

static bool win_size(unsigned *rows, unsigned *cols)
{
	struct winsize ws;
	int fds[2] = {STDIN_FILENO, STDOUT_FILENO};
	for (int i = 0; i < 2; i++)
		if (!ioctl(fds[i], TIOCGWINSZ, &ws) && ws.ws_row && ws.ws_col) {
			*rows = ws.ws_row;
			*cols = ws.ws_col;
			return true;
		}
	return false;
}

static int send_input(struct client *c, uint64_t session, const void *data, size_t n, bool eof, unsigned rows,
		      unsigned cols, char *err)
{
	struct req_exec_input q = {.session = session, .data = {data, n}, .eof = eof, .rows = rows, .cols = cols};
	struct mpw w;
	mpw_init(&w);
	proto_encode(&w, OP_EXEC_INPUT, 0, &q); /* id 0: its answer (the exec has ended) is skipped */
	int rc = client_send(c, &w, err);
	mpw_free(&w);
	return rc;
}

/* Relays until the command's end: its exit code, or an orch exit code after a message. */
static int relay(struct client *c, const char *target, bool input, bool tty)
{
	uint64_t session = c->next_id;
	char err[ERR_LEN];
	bool in_open = input;
	for (;;) {
		struct pollfd pf[3] = {{.fd = c->fd, .events = POLLIN}, {.fd = winch_pipe[0], .events = POLLIN},
				       {.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN}};
		bool pending = c->ts && tls_fd_pending(c->ts);
		int r = poll(pf, 3, pending ? 0 : -1);
		if (r < 0 && errno != EINTR)
			return cli_fail(E_IO, "exec %s: poll: %s", target, strerror(errno));
		if (r > 0 && (pf[1].revents & POLLIN)) {
			char drain[64];
			if (read(winch_pipe[0], drain, sizeof drain) < 0) { /* nothing to do */
			}
			unsigned rows, cols;
			if (tty && win_size(&rows, &cols) && send_input(c, session, NULL, 0, false, rows, cols, err))
				return cli_fail(E_IO, "exec %s: %s", target, err);
		}
		if (r > 0 && pf[2].revents) {
			char buf[INPUT_CHUNK];
			ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				in_open = false;
			if (send_input(c, session, buf, n > 0 ? (size_t)n : 0, n <= 0, 0, 0, err))
				return cli_fail(E_IO, "exec %s: %s", target, err);
		}
		if (!pending && !(r > 0 && pf[0].revents))
			continue;
		struct mpr m;
		bool more;
		int rc = cli_stream_next(c, &m, &more, -1, err);
		if (rc)
			return cli_fail(rc, "exec %s: %s", target, err);
		const msgpack_object *out = mp_get(m.root, "out"), *eo = mp_get(m.root, "err");
		if (out && out->type == MSGPACK_OBJECT_BIN)
			fwrite(out->via.bin.ptr, 1, out->via.bin.size, stdout), fflush(stdout);
		if (eo && eo->type == MSGPACK_OBJECT_BIN)
			fwrite(eo->via.bin.ptr, 1, eo->via.bin.size, stderr), fflush(stderr);
		int64_t code = -1;
		mp_get_i64(m.root, "exit_code", &code);
		mpr_free(&m);
		if (!more)
			return code >= 0 && code <= 255 ? (int)code : EXIT_FAIL;
	}
}

int cmd_exec(struct cli *cli, int argc, char **argv)
{
	bool input = false, tty = false;
	int i = 1;
	for (; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--"); i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--interactive"))
			input = true;
		else if (!strcmp(o, "--tty"))
			tty = true;
		else if (o[1] != '-' && o[1] && strspn(o + 1, "it") == strlen(o + 1)) {
			input = input || strchr(o, 'i');
			tty = tty || strchr(o, 't');
		} else
			return cli_usage("exec", "unknown option %s", o);
	}
	if (i >= argc || !strcmp(argv[i], "--"))
		return cli_usage("exec", "which service or task?");
	const char *target = argv[i++];
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (i >= argc)
		return cli_usage("exec", "no command given (orch exec %s -- COMMAND...)", target);
	if (strlen(target) > 200)
		return cli_usage("exec", "%.40s...: not a service or task name", target);
	size_t bytes = 0;
	for (int k = i; k < argc; k++)
		bytes += strlen(argv[k]) + 1;
	if (argc - i > PROTO_EXEC_ARGS_MAX || bytes > PROTO_EXEC_ARGS_BYTES)
		return cli_usage("exec", "the command is too long: %d arguments, %zu bytes (at most %u and %u)", argc - i,
				 bytes, PROTO_EXEC_ARGS_MAX, PROTO_EXEC_ARGS_BYTES);
	if (tty && input && !isatty(STDIN_FILENO))
		return cli_usage("exec", "-t with -i: standard input is not a terminal (drop -t)");

	struct mpw cmd;
	mpw_init(&cmd);
	mpw_arr(&cmd, (uint32_t)(argc - i));
	for (int k = i; k < argc; k++)
		mpw_str(&cmd, argv[k]);
	unsigned rows = 0, cols = 0;
	if (tty)
		win_size(&rows, &cols);
	struct req_exec q = {.target = target, .cmd = {.raw = cmd.sb.data, .len = cmd.sb.size}, .tty = tty,
			     .stdin = input, .rows = rows, .cols = cols};
	char err[ERR_LEN];
	struct client c;
	int rc = cli_request(&c, &cli->target, OP_EXEC, &q, err);
	mpw_free(&cmd);
	if (rc)
		return cli_call_fail(rc, err);
	if (pipe(winch_pipe) == 0) {
		for (int k = 0; k < 2; k++)
			fcntl(winch_pipe[k], F_SETFL, fcntl(winch_pipe[k], F_GETFL) | O_NONBLOCK);
		struct sigaction sa = {.sa_handler = on_winch, .sa_flags = SA_RESTART};
		sigemptyset(&sa.sa_mask);
		if (tty)
			sigaction(SIGWINCH, &sa, NULL);
	}
	/* keystrokes (^C too) go to the command's terminal as they are typed */
	if (tty && input && !tcgetattr(STDIN_FILENO, &saved)) {
		struct termios raw = saved;
		cfmakeraw(&raw);
		raw_on = !tcsetattr(STDIN_FILENO, TCSADRAIN, &raw);
		atexit(restore_tty);
	}
	rc = relay(&c, target, input, tty);
	restore_tty();
	client_close(&c);
	return rc;
}
