#!/usr/bin/python3
"""celery_peer: the Python side of celeriac's interop tests.

A tiny Celery application (tasks named ``celery_peer.*``) plus a command line
that acts as a Celery client or starts a Celery worker / beat on it. Only the
Debian packages are needed (python3-celery 5.2.6, kombu 5.2.4, redis-py
4.3.4), so run it with /usr/bin/python3. See README.md next to this file.

    celery_peer.py worker [celery worker options]
    celery_peer.py beat [celery beat options]
    celery_peer.py send TASK [JSON ...] [--kwargs JSON] [--queue Q] [--countdown S]
                   [--eta ISO] [--expires S] [--priority N] [--task-id ID]
                   [--timeout S] [--no-wait]
    celery_peer.py result TASK_ID [--timeout S]
    celery_peer.py inspect ping|active|registered|stats|reserved|scheduled|revoked
                   [--timeout S]
    celery_peer.py revoke TASK_ID [--terminate]

Settings come from CELERY_PEER_* environment variables (see ENV below).
"""
import argparse
import json
import os
import sys
import time
from datetime import datetime

from celery import Celery
from celery.exceptions import TimeoutError as ResultTimeout

MODULE = 'celery_peer'
HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (Celery setting, how to read the text); read by settings_from_env()
ENV = {
    'CELERY_PEER_QUEUE': ('task_default_queue', str),
    'CELERY_PEER_PROTOCOL': ('task_protocol', int),
    'CELERY_PEER_ACKS_LATE': ('task_acks_late', lambda v: v == '1'),
    'CELERY_PEER_EXTENDED': ('result_extended', lambda v: v == '1'),
    'CELERY_PEER_TRACK_STARTED': ('task_track_started', lambda v: v == '1'),
    'CELERY_PEER_EXPIRES': ('result_expires', int),
}
DEFAULT_BROKER = 'redis://127.0.0.1:6379/0'


def settings_from_env(environ):
    """The app's configuration: JSON only, Celery's defaults otherwise, then whatever the environment asks for."""
    conf = {
        'task_default_queue': 'celery',
        'task_serializer': 'json',
        'result_serializer': 'json',
        'accept_content': ['json'],
        # leave the root logger alone: the worker's log lines still go to stderr, where tests read them
        'worker_hijack_root_logger': False,
    }
    for var, (setting, parse) in ENV.items():
        text = environ.get(var)
        if text:
            conf[setting] = parse(text)
    visibility = environ.get('CELERY_PEER_VISIBILITY')
    if visibility:
        conf['broker_transport_options'] = {'visibility_timeout': int(visibility)}
    every = environ.get('CELERY_PEER_BEAT_EVERY')
    if every:
        conf['beat_schedule'] = {
            'peer-add-16-16': {'task': MODULE + '.add', 'schedule': float(every), 'args': (16, 16)},
        }
    return conf


broker_url = os.environ.get('CELERY_PEER_BROKER', DEFAULT_BROKER)
app = Celery(MODULE, broker=broker_url, backend=os.environ.get('CELERY_PEER_BACKEND', broker_url))
app.conf.update(settings_from_env(os.environ))


# ---------------------------------------------------------------- tasks


class PeerError(Exception):
    """Raised by fail(custom=True); a result then names exc_module 'celery_peer'."""


@app.task(name=MODULE + '.add')
def add(x, y):
    return x + y


@app.task(name=MODULE + '.mul')
def mul(x, y):
    return x * y


@app.task(name=MODULE + '.xsum')
def xsum(numbers):
    """A chord body: the header's results arrive as one list."""
    return sum(numbers)


ECHO_EXTRA = {
    'list': [1, 2.5, 'three', None, True],
    'dict': {'a': {'b': {'c': []}}},
    'unicode': 'h\u00e9llo \u2603',
}


@app.task(name=MODULE + '.echo')
def echo(*args, **kwargs):
    """Hands back what it was given, plus a fixed nested value with non-ASCII text."""
    return {'args': list(args), 'kwargs': kwargs, 'nested': ECHO_EXTRA}


@app.task(name=MODULE + '.fail')
def fail(message='boom', custom=False):
    error = PeerError if custom else ValueError
    raise error(message)


@app.task(name=MODULE + '.errback')
def errback(task_id):
    """An errback with one parameter: a Python worker publishes it as a message, args [failed task id].
    (An errback taking several parameters would be called inside the failing worker instead.)"""
    return {'failed_task_id': task_id}


@app.task(name=MODULE + '.sleepy')
def sleepy(seconds=1.0, value=None):
    time.sleep(float(seconds))
    return seconds if value is None else value


@app.task(name=MODULE + '.retrying', bind=True, max_retries=5)
def retrying(self, fail_times=2, countdown=1):
    """Retries itself `fail_times` times (RuntimeError 'attempt N failed'), then returns how often it retried."""
    attempt = self.request.retries
    if attempt >= fail_times:
        return {'retries': attempt}
    raise self.retry(exc=RuntimeError('attempt %d failed' % attempt), countdown=countdown)


# ---------------------------------------------------------------- client side


def describe_error(exc):
    return {'exc_type': type(exc).__name__, 'exc_message': list(exc.args), 'exc_module': type(exc).__module__}


def result_report(async_result):
    """What the backend holds for one task, as a JSON-ready dict (what the tests parse)."""
    meta = async_result.backend.get_task_meta(async_result.id, cache=False)
    value = meta.get('result')
    report = {
        'task_id': async_result.id,
        'state': meta.get('status'),
        'result': describe_error(value) if isinstance(value, BaseException) else value,
        'traceback': meta.get('traceback'),
    }
    for optional in ('date_done', 'children', 'group_id', 'parent_id'):
        if optional in meta:
            report[optional] = meta[optional]
    return report


def wait_then_report(async_result, timeout):
    if timeout:
        try:
            async_result.get(timeout=timeout, propagate=False)
        except ResultTimeout:
            pass  # report whatever is stored (PENDING, RETRY, ...)
    return result_report(async_result)


def emit(value):
    print(json.dumps(value, default=str))
    sys.stdout.flush()


def run_celery(command, extra):
    """Becomes `python3 -m celery -A celery_peer <command> --loglevel INFO <extra>`, importing this file under its
    module name (so tasks, and PeerError's module, are `celery_peer`). A later --loglevel in `extra` wins."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (HERE, env.get('PYTHONPATH')) if p)
    argv = [sys.executable, '-m', 'celery', '-A', MODULE, command, '--loglevel', 'INFO'] + list(extra)
    os.execve(sys.executable, argv, env)


def cmd_send(opts):
    name = opts.task if '.' in opts.task else MODULE + '.' + opts.task
    options = {}
    if opts.queue is not None:
        options['queue'] = opts.queue
    if opts.countdown is not None:
        options['countdown'] = opts.countdown
    if opts.eta is not None:
        options['eta'] = datetime.fromisoformat(opts.eta)
    if opts.expires is not None:
        options['expires'] = opts.expires
    if opts.priority is not None:
        options['priority'] = opts.priority
    if opts.task_id is not None:
        options['task_id'] = opts.task_id
    sent = app.send_task(name, args=[json.loads(a) for a in opts.args], kwargs=opts.kwargs, **options)
    emit({'task_id': sent.id} if opts.no_wait else wait_then_report(sent, opts.timeout))


def cmd_result(opts):
    emit(wait_then_report(app.AsyncResult(opts.task_id), opts.timeout))


def cmd_inspect(opts):
    if opts.what == 'ping':
        replies = app.control.ping(timeout=opts.timeout)
    else:
        replies = getattr(app.control.inspect(timeout=opts.timeout), opts.what)()
    emit(replies)


def cmd_revoke(opts):
    app.control.revoke(opts.task_id, terminate=opts.terminate)
    emit({'revoked': opts.task_id})


def command_parser(command):
    """The options of one client command (a parser of its own, so that options may follow JSON arguments)."""
    parser = argparse.ArgumentParser(prog='celery_peer.py ' + command)
    if command == 'send':
        parser.description = 'send a task, wait for it, print its result'
        parser.add_argument('task', help='a task name; a name without a dot gets the celery_peer. prefix')
        parser.add_argument('args', nargs='*', help='positional arguments, each one JSON')
        parser.add_argument('--kwargs', type=json.loads, default={}, help='keyword arguments as a JSON object')
        parser.add_argument('--queue')
        parser.add_argument('--countdown', type=float)
        parser.add_argument('--eta', help='ISO-8601; without an offset it is naive (the app time zone, UTC)')
        parser.add_argument('--expires', type=float, help='seconds from now')
        parser.add_argument('--priority', type=int)
        parser.add_argument('--task-id')
        parser.add_argument('--timeout', type=float, default=30.0, help='seconds to wait for the result')
        parser.add_argument('--no-wait', action='store_true', help='print only the task id')
    elif command == 'result':
        parser.description = 'read a stored result (or wait for it with --timeout)'
        parser.add_argument('task_id')
        parser.add_argument('--timeout', type=float, default=0.0)
    elif command == 'inspect':
        parser.description = 'a remote-control query to every worker'
        parser.add_argument('what', choices=['ping', 'active', 'registered', 'stats', 'reserved', 'scheduled',
                                             'revoked'])
        parser.add_argument('--timeout', type=float, default=2.0)
    elif command == 'revoke':
        parser.description = 'broadcast a revoke'
        parser.add_argument('task_id')
        parser.add_argument('--terminate', action='store_true')
    return parser


COMMANDS = {'send': cmd_send, 'result': cmd_result, 'inspect': cmd_inspect, 'revoke': cmd_revoke}


def cli(argv):
    if not argv or argv[0] not in COMMANDS and argv[0] not in ('worker', 'beat'):
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], list(argv[1:])
    if command in ('worker', 'beat'):
        run_celery(command, rest)  # does not return
    COMMANDS[command](command_parser(command).parse_intermixed_args(rest))
    return 0


if __name__ == '__main__':
    # Run the CLI of the module imported by name, so that there is one app and one set of task classes.
    sys.path.insert(0, HERE)
    import celery_peer
    sys.exit(celery_peer.cli(sys.argv[1:]))
