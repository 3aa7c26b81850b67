#!/usr/bin/python3
"""The Python side of scripts/capture-fixtures.mjs: Celery client actions whose effects on Redis are captured.

    capture.py s2    apply_async variants, no worker running; prints {"variant": task id, ...}
    capture.py s1    add.delay(2, 3), no worker running; prints {"task_id": ...}
    capture.py s4    failing and retrying tasks, a worker running; waits for every result; prints the task ids
    capture.py s13   writes result records by hand and reads each with a Python client; prints what it got

The node script watches Redis with MONITOR while these run; this file only drives Celery. Broker and backend come
from CELERY_PEER_BROKER / CELERY_PEER_BACKEND, as for celery_peer.py (next to this file).
"""
import json
import os
import sys
import threading
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from celery_peer import add, app, echo, fail, retrying  # noqa: E402


def out(value):
    print(json.dumps(value))
    sys.stdout.flush()


def s2_variants():
    """One publish per variant, in the order of the committed fixture (the order matters: the first publish
    declares the default queue, whose binding the exchange='celery' variant then finds)."""
    ids = {}
    ids['countdown_30'] = add.apply_async((1, 1), countdown=30).id
    ids['eta_aware_utc'] = add.apply_async((1, 2), eta=datetime(2030, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)).id
    ids['eta_naive'] = add.apply_async((1, 3), eta=datetime(2030, 1, 2, 3, 4, 5)).id
    ids['expires_60s'] = add.apply_async((1, 4), expires=60).id
    ids['expires_datetime'] = add.apply_async((1, 5), expires=datetime(2030, 1, 1, tzinfo=timezone.utc)).id
    for p in (0, 1, 3, 5, 6, 8, 9, 10):
        ids['priority_%d' % p] = add.apply_async((2, p), priority=p).id
    ids['queue_custom'] = add.apply_async((3, 1), queue='custom_q').id
    ids['routing_key_only'] = add.apply_async((3, 2), routing_key='some.key').id
    ids['exchange_celery_rk_celery'] = add.apply_async((3, 3), exchange='celery', routing_key='celery').id
    ids['exchange_unbound'] = add.apply_async((3, 4), exchange='nosuchex', routing_key='nosuchex').id
    ids['headers_custom'] = add.apply_async((3, 5), headers={'x-custom': 'v', 'n': 1}).id
    ids['task_id_explicit'] = add.apply_async((3, 6), task_id='my-explicit-id-0001').id
    ids['shadow_timelimits_ignore_result'] = add.apply_async(
        (3, 7), shadow='renamed.add', time_limit=30, soft_time_limit=20, ignore_result=True).id
    ids['kwargs_unicode'] = echo.apply_async(('a', [1, {'b': None}]), {'k': 'h\u00e9llo \u2603', 'f': 1.5, 't': True}).id
    ids['send_task_by_name'] = app.send_task('some.remote.task', args=[1], kwargs={'x': 2}).id
    out(ids)


def s1_delay():
    out({'task_id': add.delay(2, 3).id})


def s4_failures():
    sent = {
        'fail_valueerror': fail.delay('boom'),
        'fail_custom': fail.apply_async(('custom boom',), {'custom': True}),
        'retrying': retrying.delay(2, 1),
        'retrying_exhausted': retrying.delay(9, 1),
    }
    for res in sent.values():
        res.get(timeout=60, propagate=False)
    out({name: res.id for name, res in sent.items()})


# Records as a non-Python worker might write them, and what a Python client then sees (fixture s13).
S13_RECORDS = [
    ('r1_minimal_success', {'status': 'SUCCESS', 'result': 5}),
    ('r2_full_success', {'status': 'SUCCESS', 'result': {'a': [1, 2]}, 'traceback': None, 'children': [],
                         'date_done': '2026-01-01T00:00:00.000000', 'task_id': 'r2'}),
    ('r3_failure_builtin', {'status': 'FAILURE', 'result': {'exc_type': 'ValueError', 'exc_message': ['bad input'],
                                                            'exc_module': 'builtins'},
                            'traceback': 'Error: bad input\n    at ts (x.ts:1:1)', 'children': [],
                            'date_done': '2026-01-01T00:00:00', 'task_id': 'r3'}),
    ('r4_failure_unknown_module', {'status': 'FAILURE', 'result': {'exc_type': 'TypeError',
                                                                   'exc_message': ['x is undefined'],
                                                                   'exc_module': 'typescript'},
                                   'traceback': None, 'task_id': 'r4'}),
    ('r5_failure_message_string', {'status': 'FAILURE', 'result': {'exc_type': 'RuntimeError',
                                                                   'exc_message': 'plain string message',
                                                                   'exc_module': 'builtins'}, 'task_id': 'r5'}),
    ('r6_failure_no_module', {'status': 'FAILURE', 'result': {'exc_type': 'CustomError', 'exc_message': ['m']},
                              'task_id': 'r6'}),
    ('r7_failure_non_exception_type', {'status': 'FAILURE', 'result': {'exc_type': 'system',
                                                                       'exc_message': ['echo hi'],
                                                                       'exc_module': 'os'}, 'task_id': 'r7'}),
    ('r8_revoked', {'status': 'REVOKED', 'result': {'exc_type': 'TaskRevokedError', 'exc_message': ['revoked'],
                                                    'exc_module': 'celery.exceptions'}, 'task_id': 'r8'}),
]


def client_get(task_id, timeout):
    """AsyncResult(id).get() as a Python caller does it: the value, or the exception it raised."""
    try:
        return {'ok': True, 'value': app.AsyncResult(task_id).get(timeout=timeout)}
    except Exception as exc:  # the exception is what we capture
        cls = type(exc)
        return {'ok': False, 'exception_class': '%s.%s' % (cls.__module__, cls.__qualname__), 'args': list(exc.args)}


def s13_records():
    import redis
    db = redis.Redis.from_url(app.conf.result_backend)

    def key(task_id):
        return 'celery-task-meta-' + task_id

    cases = {}
    for name, record in S13_RECORDS:
        db.set(key(name), json.dumps(record))
        cases[name] = {'stored': record, 'python_client_get': client_get(name, 4)}

    for name, publish in (('r9_late_set_without_publish', False), ('r10_late_set_with_publish', True)):
        late = {'status': 'SUCCESS', 'result': 'late'}
        text = json.dumps(dict(late, task_id=name))

        def write_later(name=name, text=text, publish=publish):
            time.sleep(1)
            db.set(key(name), text)
            if publish:
                db.publish(key(name), text)
        writer = threading.Thread(target=write_later)
        started = time.monotonic()
        writer.start()
        got = client_get(name, 4)
        waited = time.monotonic() - started
        writer.join()
        cases[name] = {'stored_after_1s': late, 'published': publish, 'python_client_get': got,
                       'seconds_waited': round(waited, 2)}

    cases['r11_missing_key'] = {'python_client_get': client_get('never-written', 1),
                                'state': app.AsyncResult('never-written').state}
    out(cases)


SCENARIOS = {'s1': s1_delay, 's2': s2_variants, 's4': s4_failures, 's13': s13_records}

if __name__ == '__main__':
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    SCENARIOS[sys.argv[1]]()
