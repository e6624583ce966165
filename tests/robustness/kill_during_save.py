#!/usr/bin/python3
"""kill -9 during a checkpoint save leaves the previous checkpoint intact.

Starts `robust_ckpt saver FILE` (which saves versions 1, 2, 3, ... and prints
each once its save returned), kills it with SIGKILL at a random moment, and
checks with `robust_ckpt check FILE` that the file loads and is a complete
version: the last one reported saved, or the one after it (killed after the
rename but before the print). Repeats several times on the same file.
Usage: kill_during_save.py ROBUST_CKPT WORKDIR
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import time

ROUNDS = 12


def main():
    exe, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    path = os.path.join(work, "ckpt.safetensors")
    rng = random.Random(20261122)
    seen = []
    for r in range(ROUNDS):
        saver = subprocess.Popen([exe, "saver", path], stdout=subprocess.PIPE, text=True)
        first = saver.stdout.readline()  # blocks until version 1 is on disk
        if first.strip() != "1":
            saver.kill()
            sys.exit(f"round {r}: saver did not report its first save (got {first!r})")
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(saver.pid, signal.SIGKILL)
        rest = saver.stdout.read().split()
        saver.wait()
        if saver.returncode != -signal.SIGKILL:
            sys.exit(f"round {r}: saver exited with {saver.returncode} before it was killed")
        last = int(rest[-1]) if rest else 1
        check = subprocess.run([exe, "check", path], capture_output=True, text=True)
        if check.returncode != 0:
            sys.exit(f"round {r}: after kill -9 at version {last}, the checkpoint is damaged:\n{check.stderr}")
        got = int(check.stdout)
        if got not in (last, last + 1):
            sys.exit(f"round {r}: the file holds version {got}, but version {last} was the last saved")
        seen.append((last, got))
    temps = [f for f in os.listdir(work) if ".tmp-" in f]
    print(f"{ROUNDS} kills, (last saved, version on disk) = {seen}; {len(temps)} stale temporary files left")
    # each save removes the temporary files of killed savers: at most the
    # last round's can be left
    if len(temps) > 1:
        sys.exit(f"stale temporary files pile up: {temps}")


if __name__ == "__main__":
    main()
