"""A stand-in for `python -m podium.replica` used to drive the local backend's process logic.

Run as `python fake_replica.py -m podium.replica --replica-id … --status-file …` (the
backend's argv after the interpreter). FAKE_MODE in its environment picks the behaviour:
  serve        print a line, then sleep until SIGTERM
  ignore_term  ignore SIGTERM and sleep (the backend has to SIGKILL it)
  crash        print lines, exit 7
  load_failed  write the status file like the real replica, exit 3
  alloc        allocate FAKE_ALLOC_MB MiB, then sleep
  child        start a sleeping child process in the same group, then sleep
"""

import os
import signal
import subprocess
import sys
import time


def main() -> None:
    argv = sys.argv[1:]
    opts = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--")}
    mode = os.environ.get("FAKE_MODE", "serve")
    print(f"fake replica {opts['--replica-id']} mode={mode} argv={' '.join(argv)}")
    env = os.environ
    print(f"threads={env.get('OMP_NUM_THREADS')} unbuffered={env.get('PYTHONUNBUFFERED')}")
    if mode == "ignore_term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif mode == "crash":
        for i in range(30):
            print(f"crash line {i}")
        sys.exit(7)
    elif mode == "load_failed":
        with open(opts["--status-file"], "w") as f:
            f.write('{"state": "load_failed", "error": "RuntimeError: boom"}')
        print("Traceback: boom")
        sys.exit(3)
    elif mode == "alloc":
        block = bytearray(int(os.environ["FAKE_ALLOC_MB"]) * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
    elif mode == "child":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(f"child pid {child.pid}")
    print("ready")
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
