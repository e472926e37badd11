"""A program on a pty, as a unit on its USB serial port: the test opens the returned path.

``on_pty(cmd, ...)`` starts ``cmd`` with the pty's master as stdin and stdout (the slave is
in raw mode, as a USB CDC port is) and yields ``(path, proc)``. On exit it closes the
slave (the unit sees its port go away), waits for the program, and fails the test if
it printed a traceback.
"""

from __future__ import annotations

import os
import subprocess
import tty
from contextlib import contextmanager


@contextmanager
def on_pty(cmd: list[str], cwd=None, env=None, stderr=subprocess.PIPE):
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    proc = subprocess.Popen(cmd, stdin=master, stdout=master, stderr=stderr if stderr is not None else master,
                            cwd=cwd, env=env)
    os.close(master)
    try:
        yield path, proc
    finally:
        os.close(slave)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err = ""
        if proc.stderr is not None:
            err = proc.stderr.read().decode(errors="replace")
            proc.stderr.close()
        assert "Traceback" not in err, err
