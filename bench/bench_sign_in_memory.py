"""Memory of 32 simultaneous sign-ins (argon2id takes 64 MiB a check): bounded by accounts.HASH_SLOTS.

    .venv/bin/python -m bench.bench_sign_in_memory              # as served: two checks at once
    .venv/bin/python -m bench.bench_sign_in_memory --slots 64   # unbounded, as before the limit

Each process measures once (peak RSS only grows): run the two in separate processes.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time

from agentlearn import accounts, users
from storage import open_repository
from tests.seed import admin_of

PASSWORD = "correct horse battery"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=0, help="hash checks at once (default: the server's)")
    parser.add_argument("--sign-ins", type=int, default=32)
    args = parser.parse_args()
    if args.slots:
        accounts.HASH_SLOTS = threading.BoundedSemaphore(args.slots)
    repo = open_repository(tempfile.mkdtemp(prefix="sign-in-memory-") + "/store")
    users.add_user(repo, "dana", "admin", PASSWORD, who=admin_of(repo))
    throttle = accounts.LoginThrottle()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def one(i: int) -> None:
        try:  # half right, half wrong; every one from its own address, so none is throttled
            accounts.sign_in(repo, "dana", PASSWORD if i % 2 else "wrong guess here", throttle, client=f"10.0.0.{i}")
        except ValueError:
            pass

    start = time.time()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(args.sign_ins)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{args.sign_ins} simultaneous sign-ins: peak RSS +{(peak - before) / 1024:.0f} MiB "
          f"({peak / 1024:.0f} MiB), {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
