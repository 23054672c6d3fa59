"""The broker launcher's wait for its child's ready line
(`distkv_ext.devtools.broker.first_line`): a child that writes half a line
and hangs must not hang the benchmark or the drills that start it."""

import subprocess
import sys

import pytest

from distkv_ext.devtools.broker import first_line


@pytest.fixture
def child():
    procs = []

    def start(code):
        procs.append(subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL))
        return procs[-1]

    yield start
    for p in procs:
        p.kill()
        p.wait()
        p.stdout.close()


def test_a_whole_line_is_read(child):
    p = child("print('broker ready', flush=True); print('more'); import time; time.sleep(60)")
    assert first_line(p.stdout, 30) == b"broker ready"


def test_a_line_in_pieces_is_read_whole(child):
    code = "import sys, time\nfor part in ('bro', 'ker re', 'ady\\n'):\n    sys.stdout.write(part); sys.stdout.flush(); time.sleep(0.2)\ntime.sleep(60)"
    assert first_line(child(code).stdout, 30) == b"broker ready"


def test_half_a_line_and_a_hang_is_no_line(child):
    p = child("import sys, time; sys.stdout.write('broker re'); sys.stdout.flush(); time.sleep(60)")
    assert first_line(p.stdout, 0.5) is None
    assert p.poll() is None  # it still hangs: the caller kills it


def test_an_exit_before_the_end_of_the_line_gives_what_came(child):
    p = child("import sys; sys.stdout.write('Traceback: oops'); sys.exit(1)")
    assert first_line(p.stdout, 30) == b"Traceback: oops"
    assert p.wait() == 1


def test_silence_is_no_line(child):
    assert first_line(child("import time; time.sleep(60)").stdout, 0.3) is None
