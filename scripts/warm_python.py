#!/usr/bin/env python3
"""A Python that has imported torch, torchvision, OpenCV and the EfficientNet-Lite code once, and runs each script
it is asked to in a child forked from it: what `python SCRIPT ARGS...` or `python -c CODE ARGS...` would do, less
the 2-3 s of imports that every one of the test suite's Python runs would otherwise repeat.

  warm_python.py SOCKET PARENT_PID
      Listens on the Unix socket SOCKET; prints "ready" once it does. Each connection sends one JSON line,
      {"argv": [...], "cwd": DIR, "env": {...}, "stdout": FILE, "stderr": FILE}, and gets back {"code": N} once
      the script has ended, its standard output and error written to those files. Exits when PARENT_PID does.

The child runs the script as `python` runs it: as __main__ (runpy), sys.argv as given, sys.path[0] the script's
folder ('' for -c), the environment replaced by the one sent, stdin /dev/null; SystemExit gives the exit code and
an uncaught exception its traceback on stderr and code 1.
"""
import json
import os
import runpy
import signal
import socket
import sys
import traceback
import types

import cv2  # noqa: F401
import efficientnet_lite_pytorch  # noqa: F401
import numpy  # noqa: F401
import torch  # noqa: F401
import torchvision  # noqa: F401


def run(argv):
    """Runs argv as the python command line would, and returns its exit code."""
    try:
        if argv[0] == "-c":
            sys.argv = ["-c"] + argv[2:]
            sys.path[0] = ""
            main = types.ModuleType("__main__")
            sys.modules["__main__"] = main
            exec(compile(argv[1], "<string>", "exec"), main.__dict__)
        else:
            sys.argv = list(argv)
            sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
            runpy.run_path(argv[0], run_name="__main__")
        return 0
    except SystemExit as e:
        if e.code is None:
            return 0
        if isinstance(e.code, int):
            return e.code
        print(e.code, file=sys.stderr)
        return 1
    except BaseException as e:
        traceback.print_exception(type(e), e, e.__traceback__.tb_next)  # from the script's frame on
        return 1


def child(conn):
    request = json.loads(conn.makefile("r", encoding="utf-8").readline())
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    code = run(request["argv"])
    sys.stdout.flush()
    sys.stderr.flush()
    conn.sendall((json.dumps({"code": code}) + "\n").encode())
    os._exit(0)


def main():
    path, parent = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    server.settimeout(1.0)
    print("ready", flush=True)
    try:
        while os.getppid() == parent:
            try:
                conn, _ = server.accept()
            except socket.timeout:
                continue
            conn.settimeout(None)
            if os.fork() == 0:
                server.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the script may wait for processes of its own
                try:
                    child(conn)
                finally:
                    os._exit(1)
            conn.close()
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
