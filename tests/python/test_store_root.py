"""The zero-config store root (pyloot.backends.default_root): created 0700,
and never a directory that another user created or can write, nor a symlink
(docs/security.md, "A store root planted in /tmp")."""
import logging
import os
import stat
import subprocess
import sys
import tempfile

import pytest

from pyloot import backends


@pytest.fixture
def tmp_root(tmp_path, monkeypatch):
    """A private temp dir, a private XDG_RUNTIME_DIR and HOME; returns the
    path the default root takes when it is usable."""
    tmp = tmp_path / "tmp"
    tmp.mkdir(mode=0o1777)
    os.chmod(tmp, 0o1777)
    xdg = tmp_path / "run"
    xdg.mkdir(mode=0o700)
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(backends, "_warned", set(), raising=False)
    return tmp / ("pyloot-%d" % os.getuid())


def fallback(tmp_root):
    return str(tmp_root.parent.parent / "run" / "pyloot")


def test_fresh_root_is_created_0700(tmp_root, caplog):
    with caplog.at_level(logging.WARNING, logger="pyloot"):
        root = backends.default_root()
    assert root == str(tmp_root)
    st = os.lstat(root)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    assert st.st_uid == os.geteuid()
    assert not caplog.records
    assert os.path.dirname(backends.default_path()) == root


def test_world_writable_root_is_not_used(tmp_root, caplog):
    tmp_root.mkdir()
    os.chmod(tmp_root, 0o777)
    with caplog.at_level(logging.WARNING, logger="pyloot"):
        root = backends.default_root()
    assert root == fallback(tmp_root)
    assert stat.S_IMODE(os.lstat(root).st_mode) == 0o700
    assert os.path.dirname(backends.default_path()) == root
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(tmp_root) in warnings[0] and "0777" in warnings[0] and root in warnings[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving the root to another uid needs root")
def test_root_of_another_user_is_not_used(tmp_root, caplog):
    tmp_root.mkdir(mode=0o777)
    os.chmod(tmp_root, 0o777)
    os.chown(tmp_root, 65534, 65534)  # nobody: the squatter
    with caplog.at_level(logging.WARNING, logger="pyloot"):
        root = backends.default_root()
    assert root == fallback(tmp_root)
    assert "uid 65534" in caplog.text and str(tmp_root) in caplog.text
    # Even a 0700 root is refused when someone else owns it.
    os.chmod(tmp_root, 0o700)
    assert backends.default_root() == fallback(tmp_root)


def test_symlinked_root_is_not_used(tmp_root, tmp_path, caplog):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    os.symlink(target, tmp_root)
    with caplog.at_level(logging.WARNING, logger="pyloot"):
        root = backends.default_root()
    assert root == fallback(tmp_root)
    assert "symbolic link" in caplog.text
    assert os.listdir(target) == []


def test_fallbacks_are_checked_too(tmp_root, monkeypatch, caplog):
    tmp_root.mkdir()
    os.chmod(tmp_root, 0o777)
    run = fallback(tmp_root)
    os.mkdir(run)
    os.chmod(run, 0o757)
    with caplog.at_level(logging.WARNING, logger="pyloot"):
        root = backends.default_root()
    home_root = os.path.join(os.environ["HOME"], ".cache", "pyloot-%d" % os.getuid())
    assert root == home_root
    assert stat.S_IMODE(os.lstat(root).st_mode) == 0o700
    # None usable: a private directory of this process, said in a warning.
    os.chmod(root, 0o777)
    monkeypatch.setattr(backends, "_private", None)
    root = backends.default_root()
    assert root not in (str(tmp_root), run, home_root)
    st = os.lstat(root)
    assert st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o700
    assert "private to this process" in caplog.text
    assert backends.default_root() == root


def test_pyloot_start_avoids_a_planted_root(tmp_root):
    tmp_root.mkdir()
    os.chmod(tmp_root, 0o777)
    planted = tmp_root / "planted"
    planted.mkdir()
    code = ("import pyloot, sys\n"
            "p = pyloot.PyLoot(interval=60)\n"
            "p.start()\n"
            "print(p.path)\n"
            "p.stop(blocking=True)\n")
    env = dict(os.environ, TMPDIR=str(tmp_root.parent), PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("PYLOOT_DB", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    path = out.stdout.decode().strip()
    assert path.startswith(fallback(tmp_root) + os.sep)
    assert os.path.isdir(path)
    assert sorted(os.listdir(tmp_root)) == ["planted"]
    assert str(tmp_root) in out.stderr.decode() and "0777" in out.stderr.decode()
