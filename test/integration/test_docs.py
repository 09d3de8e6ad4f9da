"""Issue 6 (operators' experience): the manual pages are clean mdoc, every command has a page
whose SYNOPSIS is the command's -h usage line, `orch help` works with and without man(1),
man(1) renders the pages, the spec examples in orch-compose(5) parse, and the build installs
the pages under share/man. No daemon is started; nothing here needs root."""
import glob
import os
import re
import shutil
import subprocess
import tempfile

from harness import BIN, ROOT, Fail, check

MAN = os.path.join(ROOT, "man")
TIMEOUTS = {"test_build_installs_pages": 600}


def need(prog, pkg):
    path = shutil.which(prog)
    if not path:
        raise Fail("%s is not installed (Debian package %s; scripts/setup.sh installs it)" % (prog, pkg))
    return path


def run(args, env=None, check_rc=None, **kw):
    p = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, **kw)
    if check_rc is not None:
        check(p.returncode == check_rc, "%s exited %d, expected %d; stderr: %s" %
              (" ".join(args), p.returncode, check_rc, p.stderr.strip()[:500]))
    return p


def pages():
    out = sorted(glob.glob(os.path.join(MAN, "*.[1-8]")))
    check(out, "no manual pages under %s" % MAN)
    return out


def commands():
    """The commands `orch -h` lists ("  NAME       summary" lines)."""
    out = run([BIN, "-h"], check_rc=0).stdout
    names = re.findall(r"^  ([a-z][a-z-]*) +\S", out, re.M)
    check(len(names) >= 10, "orch -h lists only %r" % names)
    return names


def usage_line(cmd):
    """`orch CMD -h`'s usage (its first lines, up to the blank one) without "usage: ",
    whitespace collapsed."""
    out = run([BIN, cmd, "-h"], check_rc=0).stdout
    first = out.split("\n\n", 1)[0] if out else ""
    check(first.startswith("usage: orch "), "orch %s -h does not start with a usage line: %r" % (cmd, first))
    return " ".join(first[len("usage: "):].split())


def help_parts(cmd):
    """`orch CMD -h` as (usage, summary, options) blocks, each a list of lines."""
    out = run([BIN, cmd, "-h"], check_rc=0).stdout
    blocks = out.rstrip("\n").split("\n\n")
    check(len(blocks) >= 3, "orch %s -h: no usage, summary and closing line: %r" % (cmd, out[:300]))
    opts = blocks[2].splitlines()[1:] if blocks[2].startswith("options:") else []
    return blocks[0].splitlines(), blocks[1].splitlines(), opts


def render(path, width=1000):
    """The page as plain text through mandoc (overstrike removed), wide enough that no line
    of the SYNOPSIS is wrapped."""
    need("mandoc", "mandoc")
    out = run(["mandoc", "-Tascii", "-O", "width=%d" % width, path], check_rc=0).stdout
    return re.sub(r".\x08", "", out)


def section(text, name):
    """The body of section NAME of a rendered page, whitespace collapsed."""
    m = re.search(r"^%s\n(.*?)(?=^\S|\Z)" % re.escape(name), text, re.M | re.S)
    return " ".join(m.group(1).split()) if m else None


def test_pages_lint_clean():
    need("mandoc", "mandoc")
    ps = pages()
    for want in ("orch.1", "orch-compose.5", "orch.8"):
        check(os.path.join(MAN, want) in ps, "man/%s is missing" % want)
    p = run(["mandoc", "-Tlint", "-W", "warning"] + ps)
    report = (p.stdout + p.stderr).strip()
    check(p.returncode == 0 and not report, "mandoc -Tlint -W warning reports:\n%s" % report)
    # The checker must be able to fail: a page with an mdoc mistake is reported.
    with tempfile.TemporaryDirectory() as d:
        bad = os.path.join(d, "bad.1")
        with open(bad, "w") as f:
            f.write(".Dd November 27, 2026\n.Dt BAD 1\n.Os\n.Sh NAME\n.Nm bad\n.Sh DESCRIPTION\n.Xr bad\n")
        p = run(["mandoc", "-Tlint", "-W", "warning", bad])
        check(p.returncode != 0 and (p.stdout + p.stderr).strip(), "mandoc -Tlint did not flag a broken page")


def test_every_command_has_a_page_with_its_synopsis():
    cmds = commands()
    # Pages of commands that -h does not list (debug) are held to the same rule.
    extra = [os.path.basename(p)[5:-2] for p in glob.glob(os.path.join(MAN, "orch-*.1"))]
    bad = []
    for cmd in sorted(set(cmds) | set(extra)):
        page = os.path.join(MAN, "orch-%s.1" % cmd)
        if not os.path.exists(page):
            bad.append("%s: no page man/orch-%s.1" % (cmd, cmd))
            continue
        p = run([BIN, cmd, "-h"])
        if p.returncode != 0:
            bad.append("%s: man/orch-%s.1 documents a command orch does not have (-h exited %d)" %
                       (cmd, cmd, p.returncode))
            continue
        syn = section(render(page), "SYNOPSIS")
        want = usage_line(cmd)
        if syn != want:
            bad.append("%s:\n    page:  %s\n    usage: %s" % (cmd, syn, want))
    check(not bad, "pages out of step with the command table (src/cli/commands.c):\n" + "\n".join(bad))


def test_overview_page_lists_every_command_and_exit_code():
    text = open(os.path.join(MAN, "orch.1")).read()
    missing = [c for c in commands() if not re.search(r"^\.It Xr orch-%s 1$" % re.escape(c), text, re.M)]
    check(not missing, "orch(1)'s command list lacks %s" % ", ".join(missing))
    # Exit codes: every EXIT_* of src/cli/cli.h is an item of orch(1)'s EXIT STATUS.
    codes = sorted({int(v) for v in re.findall(r"\bEXIT_[A-Z]+ = (\d+)",
                                               open(os.path.join(ROOT, "src", "cli", "cli.h")).read())})
    check(codes and codes[0] == 0, "no exit codes found in src/cli/cli.h")
    body = text.split(".Sh EXIT STATUS", 1)[-1].split(".Sh ", 1)[0]
    documented = sorted(int(v) for v in re.findall(r"^\.It (\d+)$", body, re.M))
    check(documented == codes, "orch(1) documents exit codes %r, src/cli/cli.h has %r" % (documented, codes))


def test_help_without_man_shows_usage():
    with tempfile.TemporaryDirectory() as empty:
        # ORCH_HELP_MAN makes orch try man(1) even without a terminal; man is not on PATH.
        env = dict(os.environ, PATH=empty, ORCH_HELP_MAN="1")
        for cmd in ("deploy", "init", "ps"):
            p = run([BIN, "help", cmd], env=env, check_rc=0)
            want = run([BIN, cmd, "-h"], check_rc=0).stdout
            check(p.stdout == want, "orch help %s without man printed:\n%s\nexpected orch %s -h:\n%s" %
                  (cmd, p.stdout, cmd, want))
        p = run([BIN, "help"], env=env, check_rc=0)
        check(p.stdout == run([BIN, "-h"], check_rc=0).stdout, "orch help without man is not the overview")
        p = run([BIN, "help", "no-such-command"], env=env)
        check(p.returncode == 2, "orch help of an unknown command exited %d, expected 2" % p.returncode)


def test_help_shows_the_page_through_man():
    need("man", "man-db")
    with tempfile.TemporaryDirectory() as d:
        # A manual tree as zig build install lays it out, found through MANPATH.
        for path in pages():
            sec = path[-1]
            os.makedirs(os.path.join(d, "man" + sec), exist_ok=True)
            shutil.copy(path, os.path.join(d, "man" + sec))
        env = dict(os.environ, MANPATH=d, MANPAGER="cat", PAGER="cat", MANWIDTH="100", ORCH_HELP_MAN="1")
        p = run([BIN, "help", "deploy"], env=env, check_rc=0)
        check("ORCH-DEPLOY(1)" in p.stdout and "EXIT STATUS" in p.stdout,
              "orch help deploy did not show the page:\n%s" % p.stdout[:800])
        p = run([BIN, "help", "compose"], env=env, check_rc=0)
        check("ORCH-COMPOSE(5)" in p.stdout, "orch help compose did not show orch-compose(5):\n%s" % p.stdout[:800])


def test_man_renders_overview():
    need("man", "man-db")
    env = dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80")
    for path in pages():
        p = run(["man", "-l", path], env=env)
        check(p.returncode == 0 and not p.stderr.strip(),
              "man -l %s exited %d: %s" % (os.path.basename(path), p.returncode, p.stderr.strip()[:500]))
        check("NAME" in p.stdout and "orch" in p.stdout, "man -l %s rendered no NAME section" % path)
    out = run(["man", "-l", os.path.join(MAN, "orch.1")], env=env, check_rc=0).stdout
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "ENVIRONMENT", "EXIT STATUS", "SEE ALSO"):
        check(re.search(r"^%s$" % heading, out, re.M), "man -l man/orch.1 has no %s section" % heading)
    check(not re.search(r"^\.[A-Z][a-z] ", out, re.M), "man -l man/orch.1 shows raw macros:\n%s" % out[:800])
    check("orch-deploy(1)" in out, "the command list of orch(1) did not render")


def test_compose_page_examples_parse():
    """Each YAML example of orch-compose(5) is a valid spec: orch deploy parses the file before
    it looks for a node, so with no node it must get as far as exit code 3."""
    text = render(os.path.join(MAN, "orch-compose.5"), width=200)
    examples = text.split("\nEXAMPLES\n", 1)[1].split("\nSEE ALSO\n", 1)[0]
    blocks, cur = [], []
    for line in examples.split("\n") + [""]:
        if line.startswith(" " * 10):
            cur.append(line)
        elif cur and line.strip():
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    specs = []
    for b in blocks:
        indent = min(len(l) - len(l.lstrip()) for l in b if l.strip())
        specs.append("\n".join(l[indent:] for l in b) + "\n")
    specs = [s for s in specs if s.startswith(("services:", "name:"))]
    check(len(specs) >= 2, "found %d YAML examples in orch-compose(5)" % len(specs))
    with tempfile.TemporaryDirectory() as d:
        for i, spec in enumerate(specs):
            f = os.path.join(d, "example%d.yaml" % i)
            with open(f, "w") as fh:
                fh.write(spec)
            p = run([BIN, "--data-dir", os.path.join(d, "no-node"), "deploy", "-f", f])
            check(p.returncode == 3 and "no node running" in p.stderr,
                  "example %d of orch-compose(5) did not parse (exit %d): %s\n%s" %
                  (i, p.returncode, p.stderr.strip(), spec))
        # and a broken spec is caught before that point
        f = os.path.join(d, "bad.yaml")
        with open(f, "w") as fh:
            fh.write("services:\n  web:\n    image: x\n    devices: [/dev/fuse]\n")
        p = run([BIN, "--data-dir", os.path.join(d, "no-node"), "deploy", "-f", f])
        check(p.returncode == 1 and "bad.yaml:4:5" in p.stderr, "an invalid spec was not refused: %s" % p.stderr)


def test_build_installs_pages():
    zig = os.path.join(ROOT, "vendor", "zig", "zig")
    check(os.access(zig, os.X_OK), "no Zig at %s (scripts/setup.sh stages it)" % zig)
    with tempfile.TemporaryDirectory() as prefix:
        p = run([zig, "build", "-Dwerror=true", "install", "--prefix", prefix], cwd=ROOT)
        check(p.returncode == 0, "zig build install failed:\n%s" % (p.stdout + p.stderr)[-2000:])
        for path in pages():
            name = os.path.basename(path)
            dest = os.path.join(prefix, "share", "man", "man" + name[-1], name)
            check(os.path.isfile(dest), "zig build install did not put %s at %s" % (name, dest))
            with open(path, "rb") as a, open(dest, "rb") as b:
                check(a.read() == b.read(), "installed %s differs from man/%s" % (dest, name))
        for sec in ("man1", "man5", "man8"):
            check(os.listdir(os.path.join(prefix, "share", "man", sec)), "share/man/%s is empty" % sec)
        check(os.access(os.path.join(prefix, "bin", "orch"), os.X_OK), "zig build install did not install bin/orch")


def test_help_fits_80_columns_in_whole_sentences():
    """orch -h and every orch CMD -h: no line over 80 columns; the overview gives each
    command the first sentence of its summary, whole (a prefix of orch CMD -h's summary
    ending with its period), and every summary ends a sentence. They were cut at the first
    line of a hand-wrapped text, mid-sentence, 90 columns wide."""
    overview = run([BIN, "-h"], check_rc=0).stdout
    cmds = commands() + ["debug"]
    long = ["orch -h: %r" % l for l in overview.splitlines() if len(l) > 80]
    summaries = {}
    for cmd in cmds:
        out = run([BIN, cmd, "-h"], check_rc=0).stdout
        long += ["orch %s -h: %r" % (cmd, l) for l in out.splitlines() if len(l) > 80]
        _, summary, _ = help_parts(cmd)
        summaries[cmd] = " ".join(" ".join(summary).split())
    check(not long, "%d help lines over 80 columns:\n%s" % (len(long), "\n".join(long[:20])))
    entries = re.findall(r"^  ([a-z][a-z-]*) +(\S.*(?:\n {13}\S.*)*)", overview, re.M)
    check(len(entries) == len(cmds) - 1, "overview entries %r, commands %r" % ([e[0] for e in entries], cmds))
    bad = []
    for name, text in entries:
        text = " ".join(text.split())
        if not text.endswith(".") or not summaries[name].startswith(text):
            bad.append("%s: overview %r; summary %r" % (name, text, summaries[name][:120]))
    bad += ["%s -h summary does not end a sentence: %r" % (c, t[-60:]) for c, t in summaries.items()
            if not t.endswith((".", ")"))]
    check(not bad, "help text cut mid-sentence:\n" + "\n".join(bad))


def test_no_sudo_in_docs_and_scripts():
    """A fresh Debian machine has no sudo: root runs the README's commands as they are."""
    files = [os.path.join(ROOT, "README.md")] + pages() + glob.glob(os.path.join(ROOT, "scripts", "*")) + \
        glob.glob(os.path.join(ROOT, "bench", "*"))
    found = []
    for path in files:
        if os.path.isfile(path):
            for ln, line in enumerate(open(path, errors="replace"), 1):
                if re.search(r"\bsudo\b", line):
                    found.append("%s:%d: %s" % (os.path.relpath(path, ROOT), ln, line.strip()))
    check(not found, "sudo in docs or scripts:\n" + "\n".join(found))
    readme = open(os.path.join(ROOT, "README.md")).read()
    check("as root" in readme.split("```", 1)[0], "the README does not say its commands run as root")
