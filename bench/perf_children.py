#!/usr/bin/env python3
"""Where a function's time goes, by the functions it calls, from a call-graph recording.

    PERF=1 PERF_CASES=0 PERF_KEEP=/tmp/rec B=… bash bench/edge-ab.sh
    python3 bench/perf_children.py /tmp/rec/perf-case-0.data 'decide_and_forward::{{closure}}'

For every sample whose stack passes through FUNCTION (its outermost frame of that name), the
frame it called is counted, so the rows add up to FUNCTION's inclusive share of the process;
`(self)` is FUNCTION's own code. `perf report --children` gives the inclusive share of each
function; this gives the split below one of them, which is what a flat profile hides: the
edge component's cost is spread over many small functions that one caller owns.

Names of the component's compiled functions (`wasm[0]::function[N]::_ZN…`) are demangled with
`c++filt`, and Rust's `::h<hash>` suffixes are dropped. Needs `perf` and `c++filt` (binutils).
"""

import collections
import re
import subprocess
import sys

WASM_PREFIX = re.compile(r"wasm\[\d+\]::function\[\d+\]::")
HASH_SUFFIX = re.compile(r"::h[0-9a-f]{16}$")


def stacks(recording):
    """The stacks of `recording`, each leaf first, as demangled function names."""
    script = subprocess.run(
        ["perf", "script", "--no-inline", "-i", recording, "-F", "comm,tid,ip,sym"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    demangled = subprocess.run(
        ["c++filt"], input=WASM_PREFIX.sub("", script), check=True, capture_output=True, text=True
    ).stdout
    current = []
    for line in demangled.splitlines():
        if line.startswith("\t"):
            parts = line.strip().split(" ", 1)
            current.append(HASH_SUFFIX.sub("", parts[1] if len(parts) > 1 else "?"))
        elif line.strip():
            if current:
                yield current
            current = []
    if current:
        yield current


def children(all_stacks, function):
    """(samples in all, samples through `function`, Counter of what it called)."""
    total, inside, called = 0, 0, collections.Counter()
    for stack in all_stacks:
        total += 1
        frames = [i for i, name in enumerate(stack) if function in name]
        if not frames:
            continue
        inside += 1
        outermost = max(frames)
        called[stack[outermost - 1] if outermost > 0 else "(self)"] += 1
    return total, inside, called


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    recording, function = sys.argv[1], sys.argv[2]
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    total, inside, called = children(list(stacks(recording)), function)
    if total == 0:
        sys.exit(f"{recording}: no samples")
    print(f"{inside} of {total} samples ({100 * inside / total:.2f} % of the process) pass through {function}")
    for name, n in called.most_common(limit):
        print(f"{100 * n / total:6.2f} %  {name[:140]}")


if __name__ == "__main__":
    main()
