// `celeriac control`'s arguments and output (src/cli/control-command.ts), as Celery's `celery control` builds and
// prints them (celery/bin/control.py _compile_arguments, celery/bin/base.py CLIContext.pretty).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { controlArguments, prettyReply } from '../../src/cli/control-command.ts';
import { UsageError } from '../../src/cli/output.ts';

test('positional arguments become the method\'s named arguments, typed as Celery types them', () => {
  assert.deepEqual(controlArguments('rate_limit', ['t.add', '10/m']), { task_name: 't.add', rate_limit: '10/m' });
  assert.deepEqual(controlArguments('time_limit', ['t.add', '1.5', '3']), { task_name: 't.add', soft: 1.5, hard: 3 });
  assert.deepEqual(controlArguments('time_limit', ['t.add', '2']), { task_name: 't.add', soft: 2 });
  assert.deepEqual(controlArguments('shutdown', []), {});
  assert.deepEqual(controlArguments('revoke', ['a', 'b']), { task_id: ['a', 'b'] });
  assert.deepEqual(controlArguments('terminate', ['SIGKILL', 'a']), { signal: 'SIGKILL', task_id: ['a'] });
  assert.deepEqual(controlArguments('pool_grow', ['2']), { n: 2 });
  const usage = (fn: () => unknown, message: RegExp) => assert.throws(fn, (e: unknown) => e instanceof UsageError && message.test(e.message));
  usage(() => controlArguments('rate_limit', ['t.add']), /rate_limit takes: <task_name> <rate_limit/);
  usage(() => controlArguments('shutdown', ['now']), /shutdown takes: no arguments/);
  usage(() => controlArguments('time_limit', ['t.add', 'soon']), /soft_secs must be a number/);
  usage(() => controlArguments('explode', []), /unknown control method "explode" \(use one of revoke, terminate, rate_limit/);
});

test('replies print as Celery prints them: OK or ERROR, and the text under it', () => {
  assert.deepEqual(prettyReply({ ok: 'new rate limit set successfully' }), { status: 'OK', text: '    new rate limit set successfully' });
  assert.deepEqual(prettyReply({ error: 'unknown task' }), { status: 'ERROR', text: '    unknown task' });
  assert.deepEqual(prettyReply(['a', 'b']), { status: 'OK', text: '* a\n* b' });
  assert.deepEqual(prettyReply([]), { status: 'OK', text: '- empty -' });
  assert.deepEqual(prettyReply(null), { status: 'OK', text: 'None' });
  assert.deepEqual(prettyReply({ b: 1, a: 2 }), { status: 'OK', text: '{\n    "a": 2,\n    "b": 1\n}' });
});
