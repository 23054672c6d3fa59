"""``code deploy DIR`` stays inside DIR: symlinks that lead out of it and
special files (fifos, devices, dangling links, loops) are refused, with
exit status 4, and nothing is written."""

import os
import stat

import pytest

from distkv_ext.deploy import read_tree


def write(root, rel, text="return 1\n"):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


@pytest.fixture
def dirs(tmp_path):
    root, outside = tmp_path / "deploy", tmp_path / "outside"
    write(str(outside), "secret.py", "return 'not yours'\n")
    write(str(root), "procs/ok.py")
    return str(root), str(outside)


def problems(root):
    return read_tree(root).problems


def test_a_symlink_to_a_file_outside_is_refused(dirs):
    root, outside = dirs
    os.symlink(os.path.join(outside, "secret.py"), os.path.join(root, "procs", "evil.py"))
    (p,) = problems(root)
    assert p.startswith("procs/evil.py: a symlink to ") and "outside" in p


def test_a_symlinked_directory_outside_is_refused(dirs):
    root, outside = dirs
    os.symlink(outside, os.path.join(root, "procs", "sub"))
    assert any(p.startswith("procs/sub: a symlink to ") for p in problems(root))


def test_the_whole_modules_directory_or_jobs_file_outside_is_refused(dirs, tmp_path):
    root, outside = dirs
    os.symlink(outside, os.path.join(root, "modules"))
    write(str(tmp_path), "elsewhere/jobs.yaml", "jobs: []\n")
    os.symlink(str(tmp_path / "elsewhere" / "jobs.yaml"), os.path.join(root, "jobs.yaml"))
    ps = problems(root)
    assert any(p.startswith("modules: a symlink to ") for p in ps)
    assert any(p.startswith("jobs.yaml: a symlink to ") for p in ps)


def test_links_that_stay_inside_are_followed(dirs):
    root, _ = dirs
    write(root, "shared/common.py", "return 2\n")
    os.symlink(os.path.join(root, "shared", "common.py"), os.path.join(root, "procs", "alias.py"))
    os.symlink("../shared", os.path.join(root, "procs", "lib"))
    tree = read_tree(root)
    assert not tree.problems
    assert sorted(str(p) for p in tree.procs) == ["alias", "lib.common", "ok"]


def test_a_fifo_is_refused_and_not_read(dirs):
    root, _ = dirs
    os.mkfifo(os.path.join(root, "procs", "pipe.py"))  # reading it would block for ever
    (p,) = problems(root)
    assert p == "procs/pipe.py: not a regular file (a fifo, device or socket): refused"


def test_a_device_is_refused(dirs):
    root, _ = dirs
    try:
        os.mknod(os.path.join(root, "procs", "null.py"), stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod needs root")
    (p,) = problems(root)
    assert "not a regular file" in p


def test_dangling_links_and_loops_are_refused(dirs):
    root, _ = dirs
    os.symlink("nowhere.py", os.path.join(root, "procs", "dangling.py"))
    os.symlink(".", os.path.join(root, "procs", "loop"))
    ps = problems(root)
    assert any(p.startswith("procs/dangling.py: ") for p in ps)
    assert any(p.startswith("procs/loop") for p in ps)


def test_the_command_refuses_with_status_4_and_writes_nothing(node, tmp_path):
    root = str(tmp_path / "d")
    write(root, "procs/esc/fine.py")
    write(str(tmp_path), "outside/x.py")
    os.symlink(str(tmp_path / "outside" / "x.py"), os.path.join(root, "procs", "esc", "evil.py"))
    r = node.run("code", "deploy", root)
    assert r.returncode == 4, r.outcome
    assert "esc/evil.py: a symlink to " in r.err and "nothing written" in r.err
    assert "Traceback" not in r.err
    assert node.run("code", "get", "esc.fine").returncode == 3
