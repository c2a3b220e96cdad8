#!/usr/bin/env python3
"""One slow/half-broken-dependency scenario of bench/faults.sh: measures, turns the dependency's
fault proxy (bench/fault_proxy.py) bad, probes, turns it back, and prints one JSON object.

    python3 bench/fault_probe.py --dep mariadb --mode 'stall' --mode-file W/mariadb.mode \
        --api http://127.0.0.1:18080 --core http://127.0.0.1:18081 --token T --member 1

Probes, one after the other (the app's requests, through the edge):
    mariadb  a profile read and a post (no photo) in turn: GLOBAL_503 expected while down
    redis    the member's feed page: must keep answering 200 (cache bypassed)
    s3       a post with a 1×1 PNG: POST_002 expected while down
    smtp     a verification code for a new address: AUTH_001 expected while down
Beside them a second thread times a request that does not need the dependency (the core's
`/profile` for the database, the feed page for S3 and SMTP) to show it keeps its latency.

Reported: baseline p50/p99; time from the fault to the first error answer; error answers' latency
(p50/p99/max) after the first; successes during the fault and their p99; time from the end of
the fault to the first success; the unaffected request's p99 before and during; the contents of
the posts answered 201 (the script checks each is in the database exactly once).
"""
import argparse
import base64
import http.client
import json
import os
import threading
import time
import uuid
from urllib.parse import urlparse

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4nzYTAARmAf/jeRRuAAAAAElFTkSuQmCC"
)
EXPECTED = {"mariadb": "GLOBAL_503", "redis": None, "s3": "POST_002", "smtp": "AUTH_001"}


def call(base, method, path, headers=None, body=None, timeout=60):
    u = urlparse(base)
    started = time.monotonic()
    status, code, header = 0, "", {}
    try:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        status = r.status
        header = {k.lower(): v for k, v in r.getheaders()}
        conn.close()
        if data[:1] == b"{":
            try:
                code = json.loads(data).get("code") or ""
            except ValueError:
                pass
    except (OSError, http.client.HTTPException) as e:
        code = type(e).__name__
    return status, code, time.monotonic() - started, header


def multipart(fields, files):
    boundary = uuid.uuid4().hex
    out = []
    for k, v in fields.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    for k, (name, data) in files:
        out.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; filename="{name}"\r\n'
            f"Content-Type: image/png\r\n\r\n".encode() + data + b"\r\n"
        )
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, max(0, -(-len(xs) * p // 100) - 1))], 4)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dep", required=True, choices=sorted(EXPECTED))
    ap.add_argument("--mode", required=True)
    ap.add_argument("--mode-file", required=True)
    ap.add_argument("--api", required=True)
    ap.add_argument("--core", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--member", required=True)
    ap.add_argument("--fault-secs", type=float, default=8)
    ap.add_argument("--recover-secs", type=float, default=30)
    ap.add_argument("--tag", default=uuid.uuid4().hex[:8])
    a = ap.parse_args()
    auth = {"Authorization": f"Bearer {a.token}"}
    feed = f"/post/posts?member_id={a.member}&page=0&size=10"
    acked, n = [], [0]

    def probe():
        n[0] += 1
        if a.dep == "mariadb" and n[0] % 2 == 0 or a.dep == "s3":
            content = f"fault-{a.dep}-{a.tag}-{n[0]}"
            files = [("files", ("dot.png", PNG))] if a.dep == "s3" else []
            body, ctype = multipart({"member_id": a.member, "content": content}, files)
            r = call(a.api, "POST", "/post/registerPost", {**auth, "Content-Type": ctype}, body)
            if r[0] == 201:
                acked.append(content)
            return r
        if a.dep == "mariadb":
            return call(a.api, "GET", "/member/profile?member_id=2", auth)
        if a.dep == "redis":
            return call(a.api, "GET", feed, auth)
        email = f"fault-{a.tag}-{n[0]}@example.com"
        return call(a.api, "POST", "/auth/emailVerificationCode", {"Content-Type": "application/json"},
                    json.dumps({"email": email}))

    def unaffected():
        # The core's /profile reads neither the database nor Redis (every request through the
        # edge checks its token's revocation in Redis, so nothing there is unaffected by Redis).
        if a.dep in ("mariadb", "redis"):
            return call(a.core, "GET", "/profile")
        return call(a.api, "GET", feed, auth)

    def ok(r):
        return 200 <= r[0] < 300

    def set_mode(text):
        tmp = a.mode_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, a.mode_file)
        time.sleep(0.06)  # the proxy rereads every 50 ms

    baseline = [probe()[2] for _ in range(10) if True]
    base_unaffected = [unaffected()[2] for _ in range(20)]

    side, stop = [], threading.Event()

    def side_loop():
        while not stop.is_set():
            side.append(unaffected())
            time.sleep(0.05)

    set_mode(a.mode)
    t0 = time.monotonic()
    thread = threading.Thread(target=side_loop)
    thread.start()
    during = []  # (start offset, status, code, seconds)
    while time.monotonic() - t0 < a.fault_secs:
        s = time.monotonic() - t0
        r = probe()
        during.append((s, r[0], r[1], r[2], r[3].get("retry-after")))
        time.sleep(0.1)
    stop.set()
    thread.join()
    set_mode("pass")
    t1 = time.monotonic()
    recovered = None
    while time.monotonic() - t1 < a.recover_secs:
        r = probe()
        if ok(r):
            recovered = round(time.monotonic() - t1, 3)
            break
        time.sleep(0.05)

    errors = [d for d in during if not (200 <= d[1] < 300)]
    first_error = round(errors[0][0] + errors[0][3], 3) if errors else None
    later = [d[3] for d in errors[1:]]
    expected = EXPECTED[a.dep]
    unexpected = sorted({f"{d[1]} {d[2]}" for d in errors if d[2] != expected})
    successes = [d[3] for d in during if 200 <= d[1] < 300]
    # The read that found the dependency gone: the first read over 100 ms (with a stall it is the
    # first read; on a lossy path, whichever read first lost a packet). Reads after it show
    # whether the service then bypassed the dependency (and whether it flapped back to it).
    slow = [i for i, t in enumerate(successes) if t > 0.1]
    detect = slow[0] if slow else None
    after_detect = successes[detect + 1:] if detect is not None else successes[1:]
    print(json.dumps({
        "dep": a.dep, "mode": a.mode, "fault_secs": a.fault_secs,
        "baseline_p50": pct(baseline, 50), "baseline_p99": pct(baseline, 99),
        "probes": len(during), "errors": len(errors), "expected_code": expected,
        "unexpected": unexpected,
        "first_error_s": first_error,
        "first_answer_s": round(during[0][3], 3) if during else None,
        "error_p50": pct(later, 50), "error_p99": pct(later, 99),
        "error_max": round(max(later), 3) if later else None,
        "retry_after": sorted({d[4] for d in errors if d[4]}),
        "successes": len(successes), "success_p99": pct(successes, 99),
        "success_first_s": round(successes[0], 3) if successes else None,
        "success_later_p99": pct(successes[1:], 99),
        "success_slow": len(slow),
        "success_detect_s": round(successes[detect], 3) if detect is not None else None,
        "success_after_detect_p99": pct(after_detect, 99),
        "recovered_s": recovered,
        "unaffected_p99_before": pct(base_unaffected, 99),
        "unaffected_p99_during": pct([r[2] for r in side], 99),
        "unaffected_failures": sum(1 for r in side if not ok(r)),
        "acked": acked,
    }))


if __name__ == "__main__":
    main()
