import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NotRegisteredError, TaskError, TaskRevokedError, TimeoutError } from '../../src/common/errors.ts';
import { errorToException, exceptionToError, formatTraceback } from '../../src/protocol/index.ts';
import { loadFixture } from '../helpers/fixtures.ts';

const s13 = loadFixture('s13_result_records_vs_python_client.json').cases;
const s4 = loadFixture('s4_failure_and_retry.json');

class Named extends Error {
  constructor(name: string, message: string, readonly excModule?: string) {
    super(message);
    this.name = name;
  }
}

describe('errorToException', () => {
  it('maps JS built-in errors to Python builtins', () => {
    assert.deepEqual(errorToException(new Error('boom')), { exc_type: 'Exception', exc_message: ['boom'], exc_module: 'builtins' });
    assert.deepEqual(errorToException(new TypeError('x is undefined')), { exc_type: 'TypeError', exc_message: ['x is undefined'], exc_module: 'builtins' });
    assert.deepEqual(errorToException(new RangeError('r')), { exc_type: 'ValueError', exc_message: ['r'], exc_module: 'builtins' });
    let syntax: unknown;
    try {
      JSON.parse('{');
    } catch (e) {
      syntax = e;
    }
    assert.equal(errorToException(syntax).exc_type, 'ValueError');
    assert.equal(errorToException(syntax).exc_module, 'builtins');
  });

  it('keeps Python builtin names given as error.name', () => {
    for (const name of ['ValueError', 'KeyError', 'IndexError', 'RuntimeError', 'NotImplementedError',
      'ZeroDivisionError', 'AttributeError', 'LookupError', 'ArithmeticError', 'OSError', 'AssertionError', 'Exception']) {
      assert.deepEqual(errorToException(new Named(name, 'm')), { exc_type: name, exc_message: ['m'], exc_module: 'builtins' });
    }
    assert.equal(errorToException(new TimeoutError('slow')).exc_module, 'builtins');
  });

  it('maps Celery errors to celery.exceptions with Python-shaped arguments', () => {
    assert.deepEqual(errorToException(new NotRegisteredError('some.remote.task')), {
      exc_type: 'NotRegistered', exc_message: ['some.remote.task'], exc_module: 'celery.exceptions',
    });
    assert.deepEqual(errorToException(new TaskRevokedError('t1', 'expired')), {
      exc_type: 'TaskRevokedError', exc_message: ['expired'], exc_module: 'celery.exceptions',
    });
  });

  it('puts other names under celeriac, which Python does not import', () => {
    assert.deepEqual(errorToException(new Named('PaymentDeclined', 'no')), {
      exc_type: 'PaymentDeclined', exc_message: ['no'], exc_module: 'celeriac',
    });
    assert.equal(errorToException(new Named('Weird name!', 'x')).exc_type, 'Weirdname');
    assert.equal(errorToException(new Named('', 'x')).exc_type, 'Exception');
  });

  it('lets an excModule property win when it names an exception', () => {
    assert.deepEqual(errorToException(new Named('PeerError', 'custom boom', 'celery_peer')), {
      exc_type: 'PeerError', exc_message: ['custom boom'], exc_module: 'celery_peer',
    });
  });

  it('never writes a pair Python would refuse as a non-exception (s13 r7)', () => {
    assert.equal(errorToException(new Named('system', 'echo hi', 'os')).exc_module, 'celeriac');
    assert.equal(errorToException(new Named('print', 'x', 'builtins')).exc_module, 'celeriac');
    assert.equal(errorToException(new Named('Popen', 'x', 'subprocess')).exc_module, 'celeriac');
    assert.equal(errorToException(new Named('datetime', 'x', 'celery.exceptions')).exc_module, 'celeriac');
    const replayed = exceptionToError('r7', s13.r7_failure_non_exception_type.stored.result, null);
    assert.equal(errorToException(replayed).exc_module, 'celeriac');
  });

  it('wraps thrown non-errors as Exception', () => {
    assert.deepEqual(errorToException('boom'), { exc_type: 'Exception', exc_message: ['boom'], exc_module: 'builtins' });
    assert.deepEqual(errorToException(42), { exc_type: 'Exception', exc_message: ['42'], exc_module: 'builtins' });
    assert.deepEqual(errorToException(undefined).exc_message, ['undefined']);
    assert.deepEqual(errorToException({ code: 7 }).exc_message, ['{"code":7}']);
  });

  it('passes a remote failure on with its original class', () => {
    const info = s4.fail_custom.result_writes_in_order[0].decoded.result;
    assert.deepEqual(errorToException(exceptionToError('t', info, null)), info);
  });
});

describe('exceptionToError', () => {
  const rebuild = (key: string) => {
    const { stored } = s13[key];
    return exceptionToError(stored.task_id, stored.result, stored.traceback ?? null);
  };

  it('rebuilds builtin failures with their traceback (s13 r3)', () => {
    const err = rebuild('r3_failure_builtin');
    assert.ok(err instanceof TaskError);
    assert.equal(err.name, 'ValueError');
    assert.equal(err.message, 'ValueError: bad input');
    assert.deepEqual([err.taskId, err.excType, err.excModule, err.excMessage], ['r3', 'ValueError', 'builtins', ['bad input']]);
    assert.equal(err.remoteTraceback, 'Error: bad input\n    at ts (x.ts:1:1)');
  });

  it('keeps unknown modules (r4), string messages (r5), missing modules (r6) and odd pairs (r7)', () => {
    const r4 = rebuild('r4_failure_unknown_module') as TaskError;
    assert.deepEqual([r4.excType, r4.excModule, r4.excMessage], ['TypeError', 'typescript', ['x is undefined']]);
    const r5 = rebuild('r5_failure_message_string') as TaskError;
    assert.deepEqual([r5.excType, r5.excMessage, r5.remoteTraceback], ['RuntimeError', ['plain string message'], null]);
    const r6 = rebuild('r6_failure_no_module') as TaskError;
    assert.deepEqual([r6.excType, r6.excModule, r6.excMessage], ['CustomError', null, ['m']]);
    const r7 = rebuild('r7_failure_non_exception_type') as TaskError;
    assert.ok(r7 instanceof TaskError);
    assert.deepEqual([r7.excType, r7.excModule, r7.excMessage], ['system', 'os', ['echo hi']]);
  });

  it('gives TaskRevokedError for revoked records (s13 r8)', () => {
    const err = rebuild('r8_revoked');
    assert.ok(err instanceof TaskRevokedError);
    assert.equal(err.taskId, 'r8');
    assert.equal(err.why, 'revoked');
    const bare = exceptionToError('x', { exc_type: 'TaskRevokedError' }, null);
    assert.equal((bare as TaskRevokedError).why, 'revoked');
  });

  it('never throws on shapes that are not exception objects', () => {
    const s = exceptionToError('t', 'just text', null) as TaskError;
    assert.deepEqual([s.excType, s.excModule, s.excMessage], ['Exception', null, ['just text']]);
    assert.deepEqual((exceptionToError('t', null, null) as TaskError).excMessage, []);
    assert.deepEqual((exceptionToError('t', { exc_message: ['m'] }, null) as TaskError).excType, 'Exception');
    assert.deepEqual((exceptionToError('t', { exc_type: 'E', exc_message: 3 }, null) as TaskError).excMessage, [3]);
  });
});

describe('formatTraceback', () => {
  it('uses the stack, following causes', () => {
    const inner = new Error('inner');
    const outer = new Error('outer', { cause: inner });
    const tb = formatTraceback(outer)!;
    assert.match(tb, /^Error: outer\n\s+at /);
    assert.match(tb, /Caused by: Error: inner/);
  });

  it('handles values without a stack', () => {
    const e = new Error('bare');
    e.stack = undefined;
    assert.equal(formatTraceback(e), 'Error: bare');
    assert.equal(formatTraceback('oops'), 'Exception: oops');
    assert.equal(formatTraceback(null), null);
  });

  it('stops on cause cycles', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    assert.equal(formatTraceback(a)!.split('Caused by:').length, 2);
  });
});
