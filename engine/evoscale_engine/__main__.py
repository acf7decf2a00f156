"""Command line: `python -m evoscale_engine train JOB.json` trains one job and writes JSON lines to
stdout (progress, then {"result": …}); bad input ends with one line on stderr and exit status 2, a
diverged candidate with exit status 3, running out of GPU memory (not the candidate's fault) with 4."""

import json
import os
import sys

from . import Diverged, EngineError, require_torch


def die_with_parent():
    """Linux: the kernel kills this process when the worker that started it dies (even by SIGKILL), so an
    orphan never trains on beside the retry that resumes its checkpoint. EVOSCALE_ENGINE_PARENT_PID names
    the parent, to catch one that died before the request took effect."""
    parent = os.environ.get("EVOSCALE_ENGINE_PARENT_PID")
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(parent):
        os._exit(1)


def main(argv):
    if len(argv) != 2 or argv[0] != "train":
        print("usage: python -m evoscale_engine train JOB.json", file=sys.stderr)
        return 2
    die_with_parent()
    try:
        torch = require_torch()
        with open(argv[1], encoding="utf-8") as f:
            job = json.load(f)
        if job.get("threads"):
            torch.set_num_threads(int(job["threads"]))
        from .train import Trainer

        def emit(msg):
            sys.stdout.write(json.dumps(msg) + "\n")
            sys.stdout.flush()

        result = Trainer(job, lambda p: emit({"progress": p})).run()
        emit({"result": result})
        return 0
    except Diverged as err:
        print(f"evoscale_engine: {err}", file=sys.stderr)
        return 3
    except RuntimeError as err:
        if "out of memory" not in str(err):
            raise
        print(f"evoscale_engine: out of GPU memory: {str(err).splitlines()[0]}", file=sys.stderr)
        return 4
    except (EngineError, OSError, KeyError, ValueError, IndexError, TypeError) as err:
        print(f"evoscale_engine: {str(err).splitlines()[0] if str(err) else type(err).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
