"""Command line: `python -m evoscale_engine train JOB.json` trains one job and writes JSON lines to
stdout (progress, then {"result": …}); bad input ends with one line on stderr and exit status 2, a
diverged candidate with exit status 3, running out of GPU memory (not the candidate's fault) with 4."""

import json
import sys

from . import Diverged, EngineError, require_torch


def main(argv):
    if len(argv) != 2 or argv[0] != "train":
        print("usage: python -m evoscale_engine train JOB.json", file=sys.stderr)
        return 2
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
