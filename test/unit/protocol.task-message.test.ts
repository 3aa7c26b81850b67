import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { CeleriacError, MalformedMessageError } from '../../src/common/errors.ts';
import {
  decodeTaskMessage, encodeBody, encodeTaskMessage, formatCeleryDate, markRedelivered, parseCeleryDate,
  type NewTaskMessage, type Signature,
} from '../../src/protocol/index.ts';
import { loadFixture } from '../helpers/fixtures.ts';

const s1 = loadFixture('s1_add_delay.json');
const s2 = loadFixture('s2_apply_async_variants.json').variants;

function malformed(fn: () => unknown, reason: RegExp, taskId: string | null): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MalformedMessageError, `expected MalformedMessageError, got ${String(err)}`);
    assert.match(err.reason, reason);
    assert.equal(err.taskId, taskId);
    return true;
  });
}

/** A hand-made v2 envelope with a given body and header/property overrides. */
function raw(body: unknown, headers: Record<string, unknown> = {}, properties: Record<string, unknown> = {}): string {
  return JSON.stringify({
    body: encodeBody(body),
    'content-type': 'application/json',
    headers: { task: 'tasks.add', id: 'tm-1', ...headers },
    properties: {
      delivery_tag: 'tag-1', body_encoding: 'base64', delivery_info: { exchange: '', routing_key: 'celery' }, ...properties,
    },
  });
}

const sig = (task: string, args: unknown[] = []): Signature => ({
  task, args, kwargs: {}, options: { task_id: `${task}-id` }, subtask_type: null, immutable: false,
});

const base: NewTaskMessage = { task: 'tasks.add', id: 'id-1', args: [2, 3], kwargs: {}, queue: 'celery', origin: 'gen1@h' };

describe('encodeTaskMessage', () => {
  it('has exactly the keys of a Python client message, in the same order (s1)', () => {
    const env = JSON.parse(encodeTaskMessage(base));
    assert.deepEqual(Object.keys(env), Object.keys(s1.envelope));
    assert.deepEqual(Object.keys(env.headers), Object.keys(s1.envelope.headers));
    assert.deepEqual(Object.keys(env.properties), Object.keys(s1.envelope.properties));
  });

  it('writes Python defaults: nulls, root_id = id, correlation_id = id, base64 body with the four embed keys', () => {
    const env = JSON.parse(encodeTaskMessage(base));
    assert.deepEqual(env.headers, {
      lang: 'js', task: 'tasks.add', id: 'id-1', shadow: null, eta: null, expires: null, group: null, group_index: null,
      retries: 0, timelimit: [null, null], root_id: 'id-1', parent_id: null, argsrepr: '(2, 3)', kwargsrepr: '{}',
      origin: 'gen1@h', ignore_result: false,
    });
    assert.equal(env['content-type'], 'application/json');
    assert.equal(env['content-encoding'], 'utf-8');
    assert.equal(env.properties.correlation_id, 'id-1');
    assert.equal(env.properties.reply_to, '');
    assert.equal(env.properties.delivery_mode, 2);
    assert.equal(env.properties.priority, 0);
    assert.equal(env.properties.body_encoding, 'base64');
    assert.deepEqual(env.properties.delivery_info, { exchange: '', routing_key: 'celery' });
    assert.match(env.properties.delivery_tag, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const body = JSON.parse(Buffer.from(env.body, 'base64').toString('utf8'));
    assert.deepEqual(body, s1.decoded_body);
  });

  it('gives each publish a fresh delivery tag', () => {
    const a = JSON.parse(encodeTaskMessage(base)).properties.delivery_tag;
    const b = JSON.parse(encodeTaskMessage(base)).properties.delivery_tag;
    assert.notEqual(a, b);
  });

  it('adds the expiration property like Python when expires is set (s2 expires_60s)', () => {
    const expires = new Date(Date.now() + 60_000);
    const t0 = Date.now();
    const env = JSON.parse(encodeTaskMessage({ ...base, expires }));
    const t1 = Date.now();
    assert.deepEqual(Object.keys(env.properties), Object.keys(s2.expires_60s.envelope.properties));
    const ms = Number(env.properties.expiration);
    assert.equal(typeof env.properties.expiration, 'string');
    // counted from the encoding: bracketed by the clock before and after it, however long it took
    assert.ok(ms >= expires.getTime() - t1 && ms <= expires.getTime() - t0, `expiration ${ms}`);
    assert.equal(env.headers.expires, formatCeleryDate(expires));
    const past = JSON.parse(encodeTaskMessage({ ...base, expires: new Date(Date.now() - 5000) }));
    assert.equal(past.properties.expiration, '0');
  });

  it('formats eta/expires as aware ISO with microseconds', () => {
    const env = JSON.parse(encodeTaskMessage({
      ...base, eta: new Date(Date.UTC(2026, 10, 30, 0, 40, 46, 76)), expires: new Date(Date.UTC(2030, 0, 1)),
    }));
    assert.equal(env.headers.eta, '2026-11-30T00:40:46.076000+00:00');
    assert.equal(env.headers.expires, '2030-01-01T00:00:00.000000+00:00');
  });

  it('merges extra headers after the standard ones, as apply_async(headers=...) does (s2 headers_custom)', () => {
    const env = JSON.parse(encodeTaskMessage({ ...base, headers: { 'x-custom': 'v', n: 1 } }));
    assert.deepEqual(Object.keys(env.headers), Object.keys(s2.headers_custom.envelope.headers));
    assert.equal(env.headers['x-custom'], 'v');
    assert.equal(env.headers.n, 1);
  });

  it('never lets extra headers replace the task name or id', () => {
    const env = JSON.parse(encodeTaskMessage({ ...base, headers: { id: 'evil', task: 'other', retries: 4 } }));
    assert.equal(env.headers.id, 'id-1');
    assert.equal(env.headers.task, 'tasks.add');
    assert.equal(env.headers.retries, 4);
  });

  it('keeps priority unclamped in the envelope (s2 priority_10)', () => {
    const env = JSON.parse(encodeTaskMessage({ ...base, priority: 10 }));
    assert.equal(env.properties.priority, s2.priority_10.envelope.properties.priority);
  });

  it('renders args/kwargs the way Python reprs them', () => {
    const one = JSON.parse(encodeTaskMessage({ ...base, args: ['boom'], kwargs: { k: "it's", f: 1.5, t: true, n: null } }));
    assert.equal(one.headers.argsrepr, "('boom',)");
    assert.equal(one.headers.kwargsrepr, `{'k': "it's", 'f': 1.5, 't': True, 'n': None}`);
    const none = JSON.parse(encodeTaskMessage({ ...base, args: [], argsrepr: 'custom' }));
    assert.equal(none.headers.argsrepr, 'custom');
    const nested = JSON.parse(encodeTaskMessage({ ...base, args: ['a', [1, { b: null }]] }));
    assert.equal(nested.headers.argsrepr, "('a', [1, {'b': None}])");
  });

  it('refuses arguments no worker could run', () => {
    const bad = (m: Partial<NewTaskMessage>) => () => encodeTaskMessage({ ...base, ...m } as NewTaskMessage);
    for (const m of [{ task: '' }, { id: '' }, { queue: '' }, { args: {} as never }, { kwargs: [] as never },
      { eta: new Date(NaN) }, { expires: '2030-01-01' as never }]) {
      assert.throws(bad(m), (e: unknown) => e instanceof CeleriacError && e.code === 'E_BAD_OPTION');
    }
  });
});

describe('encodeTaskMessage -> decodeTaskMessage', () => {
  it('round-trips every field', () => {
    const m: NewTaskMessage = {
      task: 'tasks.mul', id: 'rt-1', args: [1, 'two', { three: [3] }], kwargs: { k: 'h\u00e9' },
      embed: { chain: [sig('tasks.b'), sig('tasks.a')], callbacks: [sig('tasks.cb', [1])] },
      queue: 'custom_q', priority: 7, eta: new Date(Date.UTC(2030, 0, 2, 3, 4, 5, 123)),
      expires: new Date(Date.UTC(2031, 5, 6)), retries: 3, rootId: 'root-1', parentId: 'parent-1', group: 'g-1',
      groupIndex: 2, ignoreResult: true, timelimit: [30, 20], shadow: 'renamed', origin: 'gen42@box',
      headers: { 'x-trace': 'abc' }, replyTo: 'oid-1', deliveryTag: 'dt-1',
    };
    const d = decodeTaskMessage(encodeTaskMessage(m));
    assert.equal(d.protocol, 2);
    assert.equal(d.id, 'rt-1');
    assert.equal(d.task, 'tasks.mul');
    assert.deepEqual(d.args, m.args);
    assert.deepEqual(d.kwargs, m.kwargs);
    assert.deepEqual(d.embed, { chain: m.embed!.chain, callbacks: m.embed!.callbacks, errbacks: null, chord: null });
    assert.equal(d.eta?.toISOString(), '2030-01-02T03:04:05.123Z');
    assert.equal(d.expires?.toISOString(), '2031-06-06T00:00:00.000Z');
    assert.equal(d.retries, 3);
    assert.equal(d.rootId, 'root-1');
    assert.equal(d.parentId, 'parent-1');
    assert.equal(d.group, 'g-1');
    assert.equal(d.groupIndex, 2);
    assert.equal(d.ignoreResult, true);
    assert.deepEqual(d.timelimit, [30, 20]);
    assert.equal(d.shadow, 'renamed');
    assert.equal(d.origin, 'gen42@box');
    assert.equal(d.headers['x-trace'], 'abc');
    assert.equal(d.properties.reply_to, 'oid-1');
    assert.equal(d.deliveryTag, 'dt-1');
    assert.equal(d.exchange, '');
    assert.equal(d.routingKey, 'custom_q');
    assert.equal(d.priority, 7);
    assert.equal(d.redelivered, false);
    assert.equal(d.argsrepr, "(1, 'two', {'three': [3]})");
    assert.equal(d.kwargsrepr, "{'k': 'h\u00e9'}");
  });

  it('round-trips the defaults', () => {
    const d = decodeTaskMessage(encodeTaskMessage(base));
    assert.deepEqual(
      [d.eta, d.expires, d.retries, d.rootId, d.parentId, d.group, d.groupIndex, d.ignoreResult, d.shadow, d.priority],
      [null, null, 0, 'id-1', null, null, null, false, null, 0],
    );
    assert.deepEqual(d.embed, { callbacks: null, errbacks: null, chain: null, chord: null });
    assert.deepEqual(d.timelimit, [null, null]);
  });

  it('sees the redelivered flag after a restore', () => {
    assert.equal(decodeTaskMessage(markRedelivered(encodeTaskMessage(base))).redelivered, true);
  });
});

describe('decodeTaskMessage validation', () => {
  it('fills defaults for a minimal message (s12 m1 shape)', () => {
    const d = decodeTaskMessage(raw([[2, 3], {}, {}]));
    assert.deepEqual(d.embed, { callbacks: null, errbacks: null, chain: null, chord: null });
    assert.equal(d.priority, 0);
    assert.equal(d.retries, 0);
    assert.deepEqual(d.timelimit, [null, null]);
    assert.equal(d.rootId, null);
    assert.equal(d.argsrepr, null);
    assert.deepEqual(decodeTaskMessage(raw([[], {}, null])).embed.chain, null);
  });

  it('requires a task id and names it in every later error', () => {
    malformed(() => decodeTaskMessage(raw([[], {}, {}], { id: undefined })), /task id/, null);
    malformed(() => decodeTaskMessage(raw([[], {}, {}], { id: '' })), /task id/, null);
    malformed(() => decodeTaskMessage(raw([[], {}, {}], { task: '' })), /task name/, 'tm-1');
    malformed(() => decodeTaskMessage(raw([[], {}, {}], { task: null })), /task name/, 'tm-1');
  });

  it('requires a [args, kwargs, embed] body', () => {
    malformed(() => decodeTaskMessage(raw([[2, 3], {}])), /3 elements.*embed/, 'tm-1');
    malformed(() => decodeTaskMessage(raw([[2, 3], {}, {}, {}])), /3 elements.*got 4/, 'tm-1');
    malformed(() => decodeTaskMessage(raw({ args: [] })), /\[args, kwargs, embed\]/, 'tm-1');
    malformed(() => decodeTaskMessage(raw([{}, {}, {}])), /args must be an array/, 'tm-1');
    malformed(() => decodeTaskMessage(raw([[], [], {}])), /kwargs must be an object/, 'tm-1');
    malformed(() => decodeTaskMessage(raw([[], null, {}])), /kwargs must be an object/, 'tm-1');
    malformed(() => decodeTaskMessage(raw([[], {}, 'x'])), /embed/, 'tm-1');
    malformed(() => decodeTaskMessage(raw([[], {}, { chain: {} }])), /embed\.chain/, 'tm-1');
    malformed(() => decodeTaskMessage(raw([[], {}, { callbacks: ['x'] }])), /embed\.callbacks/, 'tm-1');
    malformed(() => decodeTaskMessage(raw([[], {}, { chord: [] }])), /embed\.chord/, 'tm-1');
  });

  it('checks retries, dates and time limits', () => {
    for (const retries of [-1, 1.5, '2', true]) {
      malformed(() => decodeTaskMessage(raw([[], {}, {}], { retries })), /retries/, 'tm-1');
    }
    assert.equal(decodeTaskMessage(raw([[], {}, {}], { retries: null })).retries, 0);
    malformed(() => decodeTaskMessage(raw([[], {}, {}], { eta: 'tomorrow' })), /^eta: date "tomorrow"/, 'tm-1');
    malformed(() => decodeTaskMessage(raw([[], {}, {}], { expires: 17 })), /^expires:/, 'tm-1');
    malformed(() => decodeTaskMessage(raw([[], {}, {}], { timelimit: [1] })), /timelimit/, 'tm-1');
    malformed(() => decodeTaskMessage(raw([[], {}, {}], { timelimit: ['1', null] })), /timelimit/, 'tm-1');
    assert.deepEqual(decodeTaskMessage(raw([[], {}, {}], { timelimit: [null, 5] })).timelimit, [null, 5]);
  });

  it('never invents routing: delivery_tag and delivery_info are required', () => {
    malformed(() => decodeTaskMessage(raw([[], {}, {}], {}, { delivery_tag: undefined })), /delivery_tag/, 'tm-1');
    malformed(() => decodeTaskMessage(raw([[], {}, {}], {}, { delivery_info: undefined })), /delivery_info/, 'tm-1');
    malformed(() => decodeTaskMessage(raw([[], {}, {}], {}, { delivery_info: { routing_key: 'q' } })), /exchange/, 'tm-1');
  });

  it('treats empty ids as absent and odd display fields as null', () => {
    const d = decodeTaskMessage(raw([[], {}, {}], { group: '', parent_id: '', shadow: 5, group_index: 'x', origin: 1 }));
    assert.deepEqual([d.group, d.parentId, d.shadow, d.groupIndex, d.origin], [null, null, null, null, null]);
  });

  it('carries the retry re-publish fields (s4)', () => {
    const s4 = loadFixture('s4_failure_and_retry.json');
    const [first, second] = s4.retrying.messages_published_in_order;
    const d1 = decodeTaskMessage(first.raw);
    const d2 = decodeTaskMessage(second.raw);
    assert.equal(d2.id, d1.id);
    assert.equal(d2.retries, 1);
    assert.equal(d2.parentId, d1.id);
    assert.equal(d2.rootId, d1.id);
    assert.equal(d2.eta?.toISOString(), '2026-11-30T00:44:31.355Z');
    assert.equal(d2.properties.replaced_task_nesting, 0);
  });
});

describe('Celery dates', () => {
  it('parses the three wire forms', () => {
    assert.equal(parseCeleryDate(s2.countdown_30.envelope.headers.eta)?.toISOString(), '2026-11-30T00:40:46.076Z');
    assert.equal(parseCeleryDate(s2.eta_aware_utc.envelope.headers.eta)?.toISOString(), '2030-01-02T03:04:05.123Z');
    assert.equal(parseCeleryDate(s2.eta_naive.envelope.headers.eta)?.toISOString(), '2030-01-02T03:04:05.000Z');
    assert.equal(parseCeleryDate('2026-11-30T00:49:38.000Z')?.toISOString(), '2026-11-30T00:49:38.000Z');
  });

  it('applies offsets and accepts shorter forms', () => {
    assert.equal(parseCeleryDate('2030-01-02T03:04:05+02:00')?.toISOString(), '2030-01-02T01:04:05.000Z');
    assert.equal(parseCeleryDate('2030-01-02T03:04:05.5-05:30')?.toISOString(), '2030-01-02T08:34:05.500Z');
    assert.equal(parseCeleryDate('2030-01-02 03:04')?.toISOString(), '2030-01-02T03:04:00.000Z');
    assert.equal(parseCeleryDate('2030-01-02')?.toISOString(), '2030-01-02T00:00:00.000Z');
    assert.equal(parseCeleryDate(new Date(5))?.getTime(), 5);
  });

  it('maps null/undefined to null and refuses anything else', () => {
    assert.equal(parseCeleryDate(null), null);
    assert.equal(parseCeleryDate(undefined), null);
    for (const bad of ['tomorrow', '2026-02-31T00:00:00', '2026-11-30T25:00:00', '2026-11-30T00:00:00+25:00',
      '2026-11-30T00:00:00 junk', '', 1795999617, {}, new Date(NaN)]) {
      assert.throws(() => parseCeleryDate(bad), MalformedMessageError, `accepted ${String(bad)}`);
    }
  });

  it('formats like Python isoformat() of an aware UTC datetime', () => {
    assert.equal(formatCeleryDate(new Date(Date.UTC(2026, 10, 30, 0, 40, 46, 76))), '2026-11-30T00:40:46.076000+00:00');
    assert.match(formatCeleryDate(new Date()), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$/);
  });
});
