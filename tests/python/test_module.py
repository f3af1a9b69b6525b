"""The extension module as a shared object and its exception types."""
import shutil
import subprocess

import pytest

import pyloot
from pyloot import _pyloot


def test_extension_exports_only_its_init_function():
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) is not installed")
    out = subprocess.run([nm, "-D", "--defined-only", _pyloot.__file__], capture_output=True, text=True,
                         check=True).stdout
    names = sorted(line.split()[-1] for line in out.splitlines() if line.strip())
    assert names == ["PyInit__pyloot"]


def test_errors_are_one_family():
    assert pyloot.Error is _pyloot.Error
    assert issubclass(pyloot.Error, RuntimeError)
    # A documented limit exceeded: a pyloot error, and an OverflowError as before.
    assert issubclass(pyloot.TooLargeError, pyloot.Error)
    assert issubclass(pyloot.TooLargeError, OverflowError)
