/**
 * Every captured message and record in test/fixtures/celery must go through the protocol layer:
 * task envelopes decode to what Python decoded, result records decode, control/event envelopes at least parse.
 * The walker counts what it saw so that a fixture reshuffle cannot make these tests pass vacuously.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MalformedMessageError } from '../../src/common/errors.ts';
import {
  decodeBody, decodeResultMeta, decodeTaskMessage, normalizeExceptionInfo, parseEnvelope, type TaskMessage,
} from '../../src/protocol/index.ts';
import { fixtureNames, loadFixture, type Json } from '../helpers/fixtures.ts';

const RAW_KEYS = new Set(['raw', 'lpush_raw', 'raw_message', 'value_raw', 'result_raw']);
const NOT_CAPTURES = /\.(decoded_body|decoded|value_decoded|client_results)(\.|\[|$)/;
const isObj = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

function isTaskEnvelope(env: Record<string, Json>): boolean {
  if (isObj(env.headers) && 'task' in env.headers) return true;
  const body = decodeBody(parseEnvelope(JSON.stringify(env)));
  return isObj(body) && 'task' in body;
}

/** The decoded task must say what Python's own decoding of the same bytes said. */
function checkTask(where: string, msg: TaskMessage, sibling: Record<string, Json>): void {
  const body = sibling.decoded_body;
  const headers = sibling.headers ?? sibling.envelope?.headers;
  if (Array.isArray(body)) {
    assert.equal(msg.protocol, 2, where);
    assert.deepEqual(msg.args, body[0], where);
    assert.deepEqual(msg.kwargs, body[1], where);
    for (const k of ['callbacks', 'errbacks', 'chain', 'chord'] as const) assert.deepEqual(msg.embed[k], body[2]?.[k] ?? null, where);
  } else if (isObj(body)) {
    assert.equal(msg.protocol, 1, where);
    assert.equal(msg.task, body.task, where);
    assert.equal(msg.id, body.id, where);
    assert.deepEqual(msg.args, body.args, where);
    assert.deepEqual(msg.kwargs, body.kwargs, where);
    assert.deepEqual(msg.embed.callbacks, body.callbacks, where);
  }
  if (isObj(headers) && 'task' in headers) {
    assert.equal(msg.task, headers.task, where);
    assert.equal(msg.id, headers.id, where);
    assert.equal(msg.retries, headers.retries, where);
    assert.equal(msg.group, headers.group, where);
    assert.equal(msg.groupIndex, headers.group_index, where);
    assert.equal(msg.rootId, headers.root_id, where);
    assert.equal(msg.parentId, headers.parent_id, where);
    assert.equal(msg.eta?.getTime() ?? null, headers.eta ? Date.parse(headers.eta) : null, where);
    assert.equal(msg.expires?.getTime() ?? null, headers.expires ? Date.parse(headers.expires) : null, where);
  }
  if (isObj(sibling.delivery_info)) {
    // A restore capture: only the routing and the redelivered flags were recorded next to it.
    assert.deepEqual(msg.properties.delivery_info, sibling.delivery_info, where);
    assert.equal(msg.redelivered, sibling['headers.redelivered'], where);
  }
  assert.ok(body !== undefined || headers !== undefined || isObj(sibling.delivery_info), `${where}: nothing to compare with`);
}

function checkResult(where: string, record: Record<string, Json>, decoded: Json): void {
  const meta = decodeResultMeta(JSON.stringify(record), 'fallback-id');
  assert.equal(meta.status, record.status, where);
  assert.deepEqual(meta.result, normalizeExceptionInfo(record.result ?? null), where);
  assert.equal(meta.task_id, record.task_id ?? 'fallback-id', where);
  if (decoded !== undefined) assert.deepEqual(meta, decoded, where);
}

interface Seen { tasks: number; results: number; other: number; groups: number; unacked: number; sizes: number }

function walkFixture(name: string, seen: Seen): void {
  const visit = (node: Json, path: string): void => {
    if (Array.isArray(node)) return node.forEach((v, i) => visit(v, `${path}[${i}]`));
    if (!isObj(node)) return;
    if (typeof node.status === 'string') {
      checkResult(`${path} (record)`, node, undefined);
      seen.results++;
    }
    for (const [key, value] of Object.entries(node)) {
      // Inside decoded values, `raw` is just a field of some reply (e.g. inspect stats), not a capture.
      const capture = RAW_KEYS.has(key) && typeof value === 'string' && !NOT_CAPTURES.test(path);
      if (capture) visitRaw(`${path}.${key}`, value, node);
      visit(value, `${path}.${key}`);
    }
  };
  const visitRaw = (where: string, raw: string, sibling: Record<string, Json>): void => {
    const parsed = JSON.parse(raw);
    if (isObj(parsed) && 'body' in parsed) {
      if (isTaskEnvelope(parsed)) {
        checkTask(where, decodeTaskMessage(raw), sibling);
        seen.tasks++;
      } else {
        const body = decodeBody(parseEnvelope(raw));
        if (sibling.decoded_body !== undefined) assert.deepEqual(body, sibling.decoded_body, where);
        seen.other++;
      }
    } else if (isObj(parsed) && 'status' in parsed) {
      checkResult(where, parsed, sibling.decoded);
      seen.results++;
    } else if (Array.isArray(parsed) && isObj(parsed[0]) && typeof parsed[1] === 'string') {
      // An `unacked` hash value: [envelope, exchange, routing_key].
      const msg = decodeTaskMessage(JSON.stringify(parsed[0]));
      assert.deepEqual([msg.exchange, msg.routingKey], [parsed[1], parsed[2]], where);
      seen.unacked++;
    } else if (typeof parsed === 'number' && String(sibling.key).endsWith('.s')) {
      seen.sizes++; // a chord header size (celery-taskset-meta-<gid>.s)
    } else if (isObj(parsed) && Array.isArray(parsed.result)) {
      seen.groups++; // a saved GroupResult (celery-taskset-meta-<gid>), not a task record
    } else {
      assert.fail(`${where}: unrecognised captured value ${raw.slice(0, 80)}`);
    }
  };
  visit(loadFixture(name), name);
}

describe('every fixture file', () => {
  const names = fixtureNames().filter((n) => !n.startsWith('s12_'));
  const total: Seen = { tasks: 0, results: 0, other: 0, groups: 0, unacked: 0, sizes: 0 };

  it('lists the expected captures', () => {
    assert.ok(names.length >= 12, `found ${names.length} fixture files`);
  });

  for (const name of names) {
    it(`decodes everything in ${name}`, () => {
      const seen: Seen = { tasks: 0, results: 0, other: 0, groups: 0, unacked: 0, sizes: 0 };
      walkFixture(name, seen);
      assert.ok(seen.tasks + seen.results + seen.other > 0, `${name}: nothing decoded`);
      for (const k of Object.keys(total) as (keyof Seen)[]) total[k] += seen[k];
    });
  }

  it('saw every kind of capture', () => {
    assert.ok(total.tasks >= 62, `task envelopes: ${total.tasks}`);
    assert.ok(total.results >= 97, `result records: ${total.results}`);
    assert.ok(total.other >= 29, `control/event envelopes: ${total.other}`);
    assert.equal(total.unacked, 2);
    assert.equal(total.groups, 1);
    assert.equal(total.sizes, 3);
  });
});

describe('s12 hand-made messages', () => {
  const cases = loadFixture('s12_handcrafted_messages_vs_python_worker.json').cases;
  const raw = (key: string) => JSON.stringify(cases[key].message);

  for (const key of ['m1_minimal_headers', 'm2_plain_body_no_body_encoding', 'm7_eta_Z_suffix', 'm8_echo_kwargs',
    'm10_id_not_uuid_and_no_priority']) {
    it(`decodes ${key}, which a Python worker ran`, () => {
      const msg = decodeTaskMessage(raw(key));
      assert.equal(msg.id, cases[key].message.headers.id);
      assert.equal(msg.id, cases[key].stored_result.task_id);
      assert.equal(msg.task, cases[key].message.headers.task);
    });
  }

  it('reads the values of the accepted cases', () => {
    const m1 = decodeTaskMessage(raw('m1_minimal_headers'));
    assert.deepEqual([m1.args, m1.kwargs, m1.priority, m1.retries], [[2, 3], {}, 0, 0]);
    assert.deepEqual(m1.embed, { callbacks: null, errbacks: null, chain: null, chord: null });
    assert.equal(decodeTaskMessage(raw('m7_eta_Z_suffix')).eta?.toISOString(), '2026-11-30T00:49:38.000Z');
    assert.deepEqual(decodeTaskMessage(raw('m8_echo_kwargs')).kwargs, { x: 'h\u00e9' });
    const m10 = decodeTaskMessage(raw('m10_id_not_uuid_and_no_priority'));
    assert.deepEqual([m10.id, m10.args, m10.priority, m10.deliveryTag], ['ts:job/10', [40, 2], 0, 'dt-10']);
  });

  for (const [key, id, reason] of [
    ['m3_no_delivery_tag', 'min-3', /delivery_tag/],
    ['m4_no_delivery_info', 'min-4', /delivery_info/],
    ['m5_body_without_embed', 'min-5', /embed/],
    ['m6_no_content_type', 'min-6', /content-type is missing/],
    ['m9_not_accepted_content_type', 'min-9', /application\/x-yaml/],
  ] as const) {
    it(`refuses ${key} with task id ${id}`, () => {
      assert.throws(() => decodeTaskMessage(raw(key)), (err: unknown) => {
        assert.ok(err instanceof MalformedMessageError);
        assert.equal(err.taskId, id);
        assert.match(err.reason, reason);
        return true;
      });
    });
  }
});

describe('s2 apply_async variants', () => {
  const v = loadFixture('s2_apply_async_variants.json').variants;
  const d = (k: string) => decodeTaskMessage(v[k].raw);

  it('reads countdown, aware, naive and expiring dates', () => {
    assert.equal(d('countdown_30').eta?.toISOString(), '2026-11-30T00:40:46.076Z');
    assert.equal(d('eta_aware_utc').eta?.toISOString(), '2030-01-02T03:04:05.123Z');
    assert.equal(d('eta_naive').eta?.toISOString(), '2030-01-02T03:04:05.000Z');
    assert.equal(d('expires_60s').expires?.toISOString(), '2026-11-30T00:41:16.711Z');
    assert.equal(d('expires_datetime').expires?.toISOString(), '2030-01-01T00:00:00.000Z');
  });

  it('reads routing, priority and options', () => {
    assert.equal(d('priority_10').priority, 10);
    assert.equal(d('priority_5').priority, 5);
    assert.equal(d('queue_custom').routingKey, 'custom_q');
    assert.equal(d('exchange_celery_rk_celery').exchange, 'celery');
    assert.equal(d('task_id_explicit').id, 'my-explicit-id-0001');
    assert.equal(d('headers_custom').headers['x-custom'], 'v');
    const opts = d('shadow_timelimits_ignore_result');
    assert.deepEqual([opts.shadow, opts.timelimit, opts.ignoreResult], ['renamed.add', [30, 20], true]);
    assert.deepEqual(d('kwargs_unicode').kwargs, v.kwargs_unicode.decoded_body[1]);
  });
});

describe('other scenarios', () => {
  it('reads restored messages as redelivered (s2 warm shutdown)', () => {
    const restored = loadFixture('s2_worker_priority_and_restore.json').restored_on_warm_shutdown;
    assert.equal(restored.length, 2);
    for (const r of restored) assert.equal(decodeTaskMessage(r.raw).redelivered, true);
  });

  it('reads protocol 1 messages (s9)', () => {
    const p1 = loadFixture('s9_protocol1.json').protocol1_messages;
    const plain = decodeTaskMessage(p1.plain.raw);
    assert.deepEqual([plain.protocol, plain.task, plain.args, plain.rootId, plain.ignoreResult], [1, 'celery_peer.add', [2, 3], null, false]);
    assert.deepEqual(plain.headers, {});
    const timed = decodeTaskMessage(p1.countdown_group_like.raw);
    assert.equal(timed.eta?.toISOString(), '2026-11-30T00:48:29.672Z');
    assert.equal(timed.expires?.toISOString(), '2026-11-30T00:49:28.672Z');
    const link = decodeTaskMessage(p1.link.raw);
    assert.equal(link.embed.callbacks?.[0].task, 'celery_peer.add');
    assert.equal(link.embed.chain, null);
  });

  it('reads canvas embeds (s5 chain and chord)', () => {
    const s5 = loadFixture('s5_canvas.json');
    const chain = decodeTaskMessage(s5.chain[0].raw);
    assert.deepEqual(chain.embed.chain?.map((s) => s.task), ['celery_peer.mul', 'celery_peer.add']);
    assert.equal(chain.embed.chain?.[1].options.task_id, 'ff2c6cf7-7326-4472-ab4b-5e4fd03a672b');
    const header = decodeTaskMessage(s5.chord[0].raw);
    assert.deepEqual([header.group, header.groupIndex], ['660bdc18-1597-494d-9e2b-583bc3d118be', 0]);
    assert.equal(header.embed.chord?.task, 'celery_peer.xsum');
  });
});
