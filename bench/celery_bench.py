#!/usr/bin/python3
"""Python Celery's side of the benchmark (client): enqueue N tasks one by one, or measure call->result latency at a
fixed offered rate. Uses the test peer app (test/peer/celery_peer.py, celery_peer.add). Run with /usr/bin/python3 (Debian's python3-celery)."""
import json, os, sys, time, threading
sys.path.insert(0, os.environ['CELERY_PEER_DIR'])
from celery_peer import app  # noqa: E402

def enqueue(n):
    t0 = time.perf_counter()
    for i in range(n):
        app.send_task('celery_peer.add', args=[i, 0], ignore_result=False)
    return time.perf_counter() - t0

def latency(rate, seconds):
    """Sends at `rate`; one thread watches the result keys (MGET every millisecond), since Celery's result.get()
    is not safe to call from many threads at once."""
    import redis as redis_py
    total = int(rate * seconds)
    sent = {}
    lat = []
    lock = threading.Lock()
    done = threading.Event()
    r = redis_py.Redis.from_url(os.environ['CELERY_PEER_BACKEND'])
    def watch():
        while not (done.is_set() and not sent):
            with lock:
                ids = list(sent.keys())
            if ids:
                now = time.perf_counter()
                for tid, raw in zip(ids, r.mget(['celery-task-meta-' + t for t in ids])):
                    if raw and b'"SUCCESS"' in raw:
                        with lock:
                            lat.append(now - sent.pop(tid))
            time.sleep(0.001)
    watcher = threading.Thread(target=watch)
    watcher.start()
    start = time.perf_counter()
    for i in range(total):
        due = start + i / rate
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        t = time.perf_counter()
        res = app.send_task('celery_peer.add', args=[i, 0])
        with lock:
            sent[res.id] = t
    done.set()
    watcher.join(timeout=60)
    return lat

if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'enqueue':
        print(json.dumps({'seconds': enqueue(int(sys.argv[2]))}))
    elif cmd == 'latency':
        print(json.dumps({'latencies': latency(float(sys.argv[2]), float(sys.argv[3]))}))
