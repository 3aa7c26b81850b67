import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MalformedMessageError } from '../../src/common/errors.ts';
import {
  EXCEPTION_STATES, READY_STATES, decodeResultMeta, encodeResultMeta, makeResultMeta, resultKey, type TaskState,
} from '../../src/protocol/index.ts';
import { loadFixture } from '../helpers/fixtures.ts';

const s1 = loadFixture('s1_add_delay.json');
const s5 = loadFixture('s5_canvas.json');
const s11 = loadFixture('s11_result_extended_track_started.json');
const s13 = loadFixture('s13_result_records_vs_python_client.json').cases;

const NOW = new Date(Date.UTC(2026, 10, 30, 0, 39, 18, 283));

describe('resultKey and state sets', () => {
  it('uses the Python key names', () => {
    assert.equal(resultKey('958b07a6-a3d5-4f9d-b30a-edbac209b952'), s1.result_key);
    assert.equal(resultKey('ts:job/10'), 'celery-task-meta-ts:job/10');
  });

  it('has the Celery ready and exception states', () => {
    assert.deepEqual([...READY_STATES].sort(), ['FAILURE', 'REVOKED', 'SUCCESS']);
    assert.deepEqual([...EXCEPTION_STATES].sort(), ['FAILURE', 'RETRY', 'REVOKED']);
  });
});

describe('makeResultMeta', () => {
  it('writes the s1 record, key for key and in order', () => {
    const meta = makeResultMeta({ taskId: '958b07a6-a3d5-4f9d-b30a-edbac209b952', status: 'SUCCESS', result: 5, now: NOW });
    const python = JSON.parse(s1.result_raw);
    assert.deepEqual(Object.keys(meta), Object.keys(python));
    assert.deepEqual({ ...meta, date_done: null }, { ...python, date_done: null });
    assert.equal(meta.date_done, '2026-11-30T00:39:18.283000');
    assert.equal(
      encodeResultMeta(meta),
      '{"status":"SUCCESS","result":5,"traceback":null,"children":[],"date_done":"2026-11-30T00:39:18.283000",' +
        '"task_id":"958b07a6-a3d5-4f9d-b30a-edbac209b952"}',
    );
  });

  it('puts group_id and parent_id where Python does (s5 errback record)', () => {
    const python = s5.link_error_single_arg_errback.find((op: { raw?: string }) => op.raw?.includes('"group_id"'));
    const pyKeys = Object.keys(JSON.parse(python.raw));
    const meta = makeResultMeta({ taskId: 't', status: 'SUCCESS', result: 1, groupId: 'g', parentId: 'p' });
    assert.deepEqual(Object.keys(meta), pyKeys);
    assert.equal(meta.group_id, 'g');
    assert.equal(meta.parent_id, 'p');
  });

  it('places result_extended fields before task_id (s11)', () => {
    const python = JSON.parse(s11.result_writes_in_order[1].raw);
    const extra = { name: python.name, args: python.args, kwargs: python.kwargs, worker: python.worker, retries: 0, queue: 'extq' };
    const meta = makeResultMeta({ taskId: python.task_id, status: 'SUCCESS', result: { v: 1 }, extra });
    assert.deepEqual(Object.keys(meta), Object.keys(python));
    assert.deepEqual({ ...meta, date_done: null }, { ...python, date_done: null });
  });

  it('sets date_done only for ready states', () => {
    const states: TaskState[] = ['STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'REVOKED'];
    const done = states.map((status) => makeResultMeta({ taskId: 't', status, result: null, now: NOW }).date_done);
    assert.deepEqual(done, [null, null, '2026-11-30T00:39:18.283000', '2026-11-30T00:39:18.283000', '2026-11-30T00:39:18.283000']);
    assert.match(makeResultMeta({ taskId: 't', status: 'SUCCESS', result: 1 }).date_done!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
  });

  it('omits empty group/parent ids and never lets extras replace core fields', () => {
    const meta = makeResultMeta({
      taskId: 't', status: 'FAILURE', result: { exc_type: 'ValueError', exc_message: ['x'], exc_module: 'builtins' },
      traceback: 'tb', groupId: '', parentId: null, extra: { task_id: 'other', status: 'SUCCESS', queue: 'q' },
    });
    assert.equal('group_id' in meta, false);
    assert.equal('parent_id' in meta, false);
    assert.equal(meta.task_id, 't');
    assert.equal(meta.status, 'FAILURE');
    assert.equal(meta.traceback, 'tb');
    assert.equal(meta.queue, 'q');
  });
});

describe('decodeResultMeta', () => {
  it('fills what a minimal record leaves out (s13 r1)', () => {
    const meta = decodeResultMeta(JSON.stringify(s13.r1_minimal_success.stored), 'r1');
    assert.deepEqual(meta, { status: 'SUCCESS', result: 5, traceback: null, children: [], date_done: null, task_id: 'r1' });
  });

  it('prefers the stored task_id over the key it was read from', () => {
    assert.equal(decodeResultMeta(JSON.stringify(s13.r2_full_success.stored), 'other').task_id, 'r2');
  });

  it('turns a string exc_message into a list (s13 r5)', () => {
    const meta = decodeResultMeta(JSON.stringify(s13.r5_failure_message_string.stored), 'r5');
    assert.deepEqual(meta.result, { exc_type: 'RuntimeError', exc_message: ['plain string message'], exc_module: 'builtins' });
  });

  it('keeps a SUCCESS result that merely looks like an exception untouched', () => {
    const stored = { status: 'SUCCESS', result: { exc_type: 'X', exc_message: 'kept' }, task_id: 's' };
    assert.deepEqual(decodeResultMeta(JSON.stringify(stored), 's').result, stored.result);
  });

  it('keeps extended fields (s11) and canvas ids (s5)', () => {
    const started = decodeResultMeta(s11.result_writes_in_order[0].raw, 'x');
    assert.deepEqual(started, s11.result_writes_in_order[0].decoded);
    const withGroup = s5.group.find((op: { raw?: string }) => op.raw?.includes('"group_id"'));
    assert.deepEqual(decodeResultMeta(withGroup.raw, 'x'), withGroup.decoded);
  });

  it('keeps custom states (update_state) and refuses records without a status', () => {
    assert.equal(decodeResultMeta('{"status": "PROGRESS", "result": {"done": 1}}', 'p').status, 'PROGRESS');
    for (const [raw, reason] of [
      ['{"status": 7, "result": 1}', /no status \(found 7\)/],
      ['{"result": 1}', /no status \(found undefined\)/],
      ['[1]', /not a JSON object/],
      ['nope', /not JSON/],
    ] as const) {
      assert.throws(() => decodeResultMeta(raw, 'bad-1'), (e: unknown) => {
        assert.ok(e instanceof MalformedMessageError);
        assert.match(e.reason, reason);
        assert.equal(e.taskId, 'bad-1');
        return true;
      });
    }
  });

  it('round-trips what makeResultMeta writes', () => {
    const meta = makeResultMeta({ taskId: 'rt', status: 'RETRY', result: { exc_type: 'E', exc_message: [] }, parentId: 'p' });
    assert.deepEqual(decodeResultMeta(encodeResultMeta(meta), 'rt'), meta);
  });
});
