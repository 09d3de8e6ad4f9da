"""Issue 11, fuzzing: each libFuzzer harness of test/fuzz (scripts/fuzz.sh, clang-14 with
ASan and UBSan) runs over its seed corpus and its regression inputs, then mutates them for
a few seconds; a crash, a leak, a sanitizer report or a timeout fails the test and names
the input. Longer runs: scripts/fuzz.sh TARGET SECONDS."""
import os
import subprocess

from harness import ROOT, check

SECONDS = 6
# the first test (apply) also compiles the sources with the sanitizers (~1 min on 2 cores)
TIMEOUTS = {"test_fuzz_apply": 240, "test_fuzz_dns": 90, "test_fuzz_frame": 90, "test_fuzz_image_json": 90, "test_fuzz_image_load": 90,
            "test_fuzz_mesh": 90, "test_fuzz_registry": 90, "test_fuzz_spec": 90, "test_fuzz_tar": 90}


def run(target):
    env = dict(os.environ, FUZZ_CHECK_SECONDS=str(SECONDS))
    p = subprocess.run([os.path.join(ROOT, "scripts", "fuzz.sh"), "check", target], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    out = (p.stdout + p.stderr).strip()
    print(out)
    check(p.returncode == 0, "fuzz target %s failed: %s" % (target, out.splitlines()[-1] if out else p.returncode))
    check("ok fuzz %s:" % target in p.stdout, "fuzz target %s did not report its runs: %r" % (target, out[-300:]))


def test_fuzz_apply():
    run("apply")


def test_fuzz_dns():
    run("dns")


def test_fuzz_frame():
    run("frame")


def test_fuzz_image_json():
    run("image_json")


def test_fuzz_image_load():
    run("image_load")


def test_fuzz_mesh():
    run("mesh")


def test_fuzz_registry():
    run("registry")


def test_fuzz_spec():
    run("spec")


def test_fuzz_tar():
    run("tar")
