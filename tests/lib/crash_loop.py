#!/usr/bin/env python3
"""kill -9 loops against fleetsymd (tests/run-service-crash.sh).

  crash_loop.py --fsd BIN --data DIR --debug-dir DIR --elf FILE --rounds N [--seed S]
                [--bomb DEBUG_FILE]

Each round starts fleetsymd on the same data dir, checks what was acknowledged so far, then
has several clients ingest profiles (each with its own Idempotency-Key and series label
p=ID) and upload debug files (copies of FILE with their own build IDs; 200/201 acknowledge) while the process is
killed with SIGKILL at a random moment. With --bomb (a debug file whose index takes a second
or two), one more client uploads a copy of it with a build ID of its own each round and asks
to symbolize it, so that kills land while a DWARF worker builds its index. Checked after every
kill and restart:
  - no DWARF worker outlives the fleetsymd that started it;
  - the restarted service answers;
  - every ingest answered 200 is present (its series, by label), every upload answered 200
    is served byte-identical and listed, and an upload that was not acknowledged is absent
    (404 from both) or whole and listed;
  - `PRAGMA integrity_check` of profiles.db is "ok" (read-only connection, service running);
  - the store's tmp dir is empty and no temp file lies anywhere in the data dir.
At the end every profile that did not get a 200 is sent again with its key: each must be
stored exactly once (series count and the timeline total equal to what was sent).
Prints "ok ..." / "FAILED: ..." lines and one "figures ..." line; exit 1 on a failure.
"""
import argparse
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mkpprof  # noqa: E402

failed = False


def ok(msg):
    print("ok   " + msg, flush=True)


def fail(msg):
    global failed
    failed = True
    print("FAILED: " + msg, flush=True)


def request(url, method="GET", data=None, headers=None, timeout=30):
    """(status, body); status 0 when there was no answer (refused, reset, timeout)."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except Exception:  # connection refused or reset by the kill, timeout
        return 0, b""


class Service:
    def __init__(self, args, log):
        self.args, self.log, self.proc, self.url = args, log, None, None

    def start(self):
        port_file = self.args.data + ".port"
        if os.path.exists(port_file):
            os.unlink(port_file)
        cmd = [self.args.fsd, "--listen", "127.0.0.1:0", "--port-file", port_file,
               "--data-dir", self.args.data, "--debug-dir", self.args.debug_dir,
               "--log-level", "info"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        t0 = time.time()
        while time.time() - t0 < 60:  # bounded; a WAL recovery on a loaded host takes a while
            if os.path.exists(port_file) and os.path.getsize(port_file) > 0:
                self.url = "http://127.0.0.1:%s" % open(port_file).read().strip()
                return time.time() - t0
            if self.proc.poll() is not None:
                return None
            time.sleep(0.05)
        return None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return False
        return True


def make_elf(template, bid_off, n):
    """A copy of the template ELF with build ID n (20 bytes, derived from n)."""
    bid = hashlib.sha1(b"crash-loop-%d" % n).digest()
    data = bytearray(template)
    data[bid_off:bid_off + 20] = bid
    return bid.hex(), bytes(data)


def find_build_id(data):
    """Offset of the GNU build-ID note's 20 descriptor bytes."""
    i = data.find(b"\x04\x00\x00\x00\x14\x00\x00\x00\x03\x00\x00\x00GNU\x00")
    if i < 0:
        raise SystemExit("no 20-byte GNU build ID note in the template ELF")
    return i + 16


class Ledger:
    """What every client sent and what it was answered, shared by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.profiles = {}  # id -> {"key", "value", "body", "acked"}
        self.bombs = []  # build IDs of acknowledged --bomb uploads
        self.uploads = {}  # build id -> {"sha", "acked"}
        self.next_id = 0

    def new_id(self):
        with self.lock:
            self.next_id += 1
            return self.next_id


def profile_body(pid, value, now_ns):
    spec = {"type": ["cpu", "nanoseconds"], "period": 10000000, "time_ns": now_ns,
            "duration_ns": 1000000000,
            "mappings": [{"build_id": "cd" * 20, "filename": "/opt/crash"}],
            "samples": [{"frames": [[0, 0x1000 + (pid % 64) * 16], [0, 0x2000]], "value": value},
                        {"frames": [[0, 0x3000 + (pid % 7) * 16]], "value": 1}]}
    import gzip
    return gzip.compress(mkpprof.encode(spec), 1)


def send_profile(url, led, pid):
    p = led.profiles[pid]
    q = urllib.parse.urlencode({"service": "crash", "p": "p%d" % pid})
    st, _ = request("%s/api/v1/ingest?%s" % (url, q), "POST", p["body"],
                    {"Idempotency-Key": p["key"], "Content-Type": "application/octet-stream"})
    return st


def ingest_client(url, led, stop, rng):
    while not stop.is_set():
        pid = led.new_id()
        value = rng.randrange(1, 1000)
        with led.lock:
            led.profiles[pid] = {"key": "crash-%d-%08x" % (pid, rng.getrandbits(32)),
                                 "value": value + 1,
                                 "body": profile_body(pid, value, time.time_ns()),
                                 "acked": False}
        st = send_profile(url, led, pid)
        with led.lock:
            led.profiles[pid]["acked"] = st == 200
            led.profiles[pid]["status"] = st
        if st == 0:
            return  # the server is gone
        time.sleep(0.005)  # a client's pace, not a flood: the other engineers share the cores


def upload_client(url, led, stop, template, bid_off):
    while not stop.is_set():
        n = led.new_id()
        bid, data = make_elf(template, bid_off, n)
        with led.lock:
            led.uploads[bid] = {"sha": hashlib.sha256(data).hexdigest(), "acked": False}
        st, _ = request("%s/api/v1/debuginfo/%s" % (url, bid), "PUT", data,
                        {"Content-Type": "application/octet-stream"})
        with led.lock:
            led.uploads[bid]["acked"] = st in (200, 201)
        if st == 0:
            return


def index_client(url, led, stop, template, bid_off, asked):
    n = led.new_id()
    bid, data = make_elf(template, bid_off, n)
    st, _ = request("%s/api/v1/debuginfo/%s" % (url, bid), "PUT", data,
                    {"Content-Type": "application/octet-stream"}, timeout=60)
    if st not in (200, 201):
        return
    with led.lock:
        led.bombs.append(bid)
    body = json.dumps({"build_id": bid, "addresses": ["0x1000"]}).encode()
    asked.set()  # the first ask starts the build (and waits up to 2 s for it)
    while not stop.is_set():
        st, _ = request(url + "/api/v1/symbolize", "POST", body, timeout=60)
        if st == 0:
            return
        time.sleep(0.1)


def workers_of(ppid):
    """PIDs of live fleetsym-worker processes whose parent is PPID (None: any parent)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = open("/proc/%s/cmdline" % d, "rb").read().split(b"\0")[0]
            st = open("/proc/%s/stat" % d).read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if os.path.basename(cmd) == b"fleetsym-worker" and fields[0] != "Z" and \
                (ppid is None or int(fields[1]) == ppid):
            out.append(int(d))
    return out


def alive(pid):
    try:
        st = open("/proc/%d/stat" % pid).read()
    except OSError:
        return False
    return st[st.rindex(")") + 2:].split()[0] != "Z"


def present_series(url):
    q = urllib.parse.urlencode({"query": '{service="crash"}', "from": "now-1h", "to": "now+1m"})
    st, body = request("%s/api/v1/series?%s" % (url, q), timeout=60)
    if st != 200:
        return None
    ps = [s["labels"].get("p") for s in json.loads(body)["series"]]
    return ps


def temp_files(data):
    out = []
    for root, dirs, files in os.walk(data):
        for f in files:
            path = os.path.join(root, f)
            rel = os.path.relpath(path, data)
            if rel.startswith("tmp" + os.sep) or ".tmp" in f or f.startswith(("orig.", "meta.")):
                out.append(rel)
        if os.path.relpath(root, data) == "tmp":
            out += [os.path.join("tmp", d) + "/" for d in dirs]  # a worker's private dir
    return out


def check_state(svc, led, data, rnd):
    st, _ = request(svc.url + "/api/v1/types")
    if st != 200:
        fail("round %d: the restarted service answers /api/v1/types with %d" % (rnd, st))
        return
    ps = present_series(svc.url)
    if ps is None:
        fail("round %d: /api/v1/series did not answer" % rnd)
        return
    present = set(ps)
    with led.lock:
        acked = [i for i, p in led.profiles.items() if p["acked"]]
        ups = list(led.uploads.items())
    lost = [i for i in acked if "p%d" % i not in present]
    if lost:
        fail("round %d: %d acknowledged ingests lost, e.g. %s" % (rnd, len(lost), lost[:5]))
    if len(ps) != len(present):
        fail("round %d: a series listed twice" % rnd)
    bad, half = [], []
    whole_unacked = 0
    for bid, u in ups:
        st, body = request("%s/buildid/%s/debuginfo" % (svc.url, bid), timeout=60)
        same = st == 200 and hashlib.sha256(body).hexdigest() == u["sha"]
        # the store's listing of it agrees: no file without its sidecar or the other way
        lst, _ = request("%s/api/v1/debuginfo/%s" % (svc.url, bid), timeout=60)
        if u["acked"] and not (same and lst == 200):
            bad.append((bid[:12], st, lst))
        elif not u["acked"] and not (st == lst == 404 or (same and lst == 200)):
            half.append((bid[:12], st, lst))
        elif not u["acked"] and same:
            whole_unacked += 1
    if bad:
        fail("round %d: %d acknowledged uploads not served identical: %s" % (rnd, len(bad), bad[:5]))
    if half:
        fail("round %d: unacknowledged uploads served neither whole nor 404: %s" % (rnd, half[:5]))
    db = sqlite3.connect("file:%s/profiles.db?mode=ro" % data, uri=True, timeout=30)
    try:
        res = [r[0] for r in db.execute("PRAGMA integrity_check")]
    finally:
        db.close()
    if res != ["ok"]:
        fail("round %d: integrity_check: %s" % (rnd, res[:5]))
    tmps = temp_files(data)
    if tmps:
        fail("round %d: temp files in the data dir after restart: %s" % (rnd, tmps[:5]))
    return (len(acked), sum(1 for _, u in ups if u["acked"]), len(present), whole_unacked,
            sum(1 for _, u in ups if not u["acked"]) - whole_unacked)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fsd", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--debug-dir", required=True)
    ap.add_argument("--elf", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--ingesters", type=int, default=4)
    ap.add_argument("--uploaders", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--bomb", default=None)
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    print("seed %d (--seed to repeat the kill moments)" % seed, flush=True)
    template = open(a.elf, "rb").read()
    bid_off = find_build_id(template)
    bomb = open(a.bomb, "rb").read() if a.bomb else None
    bomb_off = find_build_id(bomb) if bomb else None
    mid_index = 0
    led = Ledger()
    log = open(a.log, "ab")
    svc = Service(a, log)
    starts, kills = [], []
    for rnd in range(1, a.rounds + 1):
        t = svc.start()
        if t is None:
            fail("round %d: fleetsymd did not start on the data dir (see %s)" % (rnd, a.log))
            return 1
        starts.append(t)
        if rnd > 1:
            r = check_state(svc, led, a.data, rnd)
            if r:
                ok("round %d: restarted in %.2f s; %d acked ingests, %d acked uploads present, "
                   "%d series, integrity ok, no temp files" % (rnd, t, r[0], r[1], r[2]))
        stop = threading.Event()
        threads = [threading.Thread(target=ingest_client,
                                    args=(svc.url, led, stop, random.Random(rng.random())))
                   for _ in range(a.ingesters)]
        threads += [threading.Thread(target=upload_client,
                                     args=(svc.url, led, stop, template, bid_off))
                    for _ in range(a.uploaders)]
        asked = threading.Event()
        if bomb:
            # uploaded and asked for first, alone (40 MB take a while on a loaded host): the
            # kill then lands in the second or two its index takes to build
            ith = threading.Thread(target=index_client,
                                   args=(svc.url, led, stop, bomb, bomb_off, asked))
            ith.start()
            asked.wait(30)
            threads.append(ith)
        for th in threads:
            if th.ident is None:
                th.start()
        at = rng.uniform(0.2, 1.5)
        time.sleep(at)
        working = workers_of(svc.proc.pid)
        mid_index += bool(working)
        svc.kill9()
        t_kill = time.time()
        # the kernel kills them as their parent dies; 2 s is room for a loaded host, and
        # shorter than the index they were building still had to go
        while any(alive(w) for w in working) and time.time() - t_kill < 2:
            time.sleep(0.02)
        left = [w for w in working if alive(w)]
        if left:
            fail("round %d: DWARF workers %s still run 2 s after their fleetsymd was killed"
                 % (rnd, left))
            for w in left:
                os.kill(w, signal.SIGKILL)
        kills.append(at)
        stop.set()
        for th in threads:
            th.join(60)
    # last start: check, then send again what was not acknowledged, with the same keys
    t = svc.start()
    if t is None:
        fail("final start: fleetsymd did not start (see %s)" % a.log)
        return 1
    r = check_state(svc, led, a.data, a.rounds + 1)
    if r:
        ok("after the last kill: restarted in %.2f s; %d acked ingests, %d acked uploads present;"
           " of the unacknowledged uploads %d are whole, %d absent" % (t, r[0], r[1], r[3], r[4]))
    if bomb and led.bombs:
        # the last build ID indexed when a kill came: built now, not marked bad
        body = json.dumps({"build_id": led.bombs[-1], "addresses": ["0x1000"]}).encode()
        t0, got = time.time(), None
        while time.time() - t0 < 60:
            st, ans = request(svc.url + "/api/v1/symbolize", "POST", body, timeout=60)
            got = json.loads(ans).get("status") if st == 200 else st
            if got not in ("pending",):
                break
            time.sleep(0.2)
        if got == "found":
            ok("the last debug file a kill caught indexing is symbolized after the restart "
               "(%.1f s)" % (time.time() - t0))
        else:
            fail("the last bomb build ID after the restart: %s" % got)
    if bomb and not mid_index:
        fail("no kill landed while a DWARF worker ran: the worker checks did not run")
    unacked = [i for i, p in led.profiles.items() if not p["acked"]]
    resent = [send_profile(svc.url, led, i) for i in unacked]
    if any(s != 200 for s in resent):
        fail("resending unacknowledged profiles: statuses %s" % sorted(set(resent)))
    ps = present_series(svc.url) or []
    want = sum(p["value"] for p in led.profiles.values())
    q = urllib.parse.urlencode({"query": '{service="crash"}', "from": "now-1h", "to": "now+1m",
                                "step": "1m", "type": "cpu"})
    st, body = request("%s/api/v1/timeline?%s" % (svc.url, q), timeout=60)
    got = sum(v for _, v in json.loads(body)["points"]) if st == 200 else None
    if len(ps) == len(led.profiles) and set(ps) == {"p%d" % i for i in led.profiles} and got == want:
        ok("after resending the %d unacknowledged profiles with their keys: %d profiles, each "
           "once (%d series, timeline total %d = sent)" % (len(unacked), len(led.profiles),
                                                          len(ps), got))
    else:
        fail("exactly once: %d series for %d profiles, timeline total %s, want %d"
             % (len(ps), len(led.profiles), got, want))
    if not svc.stop():
        fail("fleetsymd did not stop within 20 s of SIGTERM")
    nacked = sum(1 for p in led.profiles.values() if p["acked"])
    nup = sum(1 for u in led.uploads.values() if u["acked"])
    print("figures rounds=%d ingests=%d acked=%d unacked=%d uploads=%d acked_uploads=%d "
          "kills_mid_index=%d kill_at_s=%s restart_s_max=%.2f"
          % (a.rounds, len(led.profiles), nacked, len(unacked), len(led.uploads), nup, mid_index,
             ",".join("%.2f" % k for k in kills), max(starts)), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
