import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { MalformedMessageError } from '../../src/common/errors.ts';
import { decodeBody, encodeBody, markRedelivered, parseEnvelope, type Envelope } from '../../src/protocol/index.ts';
import { loadFixture } from '../helpers/fixtures.ts';

const s1 = loadFixture('s1_add_delay.json');
const s12 = loadFixture('s12_handcrafted_messages_vs_python_worker.json');
const s3 = loadFixture('s3_unacked_visibility.json');

function malformed(fn: () => unknown, reason: RegExp, taskId: string | null = null): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MalformedMessageError, `expected MalformedMessageError, got ${String(err)}`);
    assert.match(err.reason, reason);
    assert.equal(err.taskId, taskId);
    assert.equal(err.code, 'E_MALFORMED_MESSAGE');
    return true;
  });
}

function envelope(over: Partial<Envelope> & Record<string, unknown>): string {
  return JSON.stringify({
    body: encodeBody([[1], {}, {}]),
    'content-type': 'application/json',
    'content-encoding': 'utf-8',
    headers: { task: 't', id: 'env-1' },
    properties: { delivery_tag: 'dt', body_encoding: 'base64', delivery_info: { exchange: '', routing_key: 'q' } },
    ...over,
  });
}

describe('parseEnvelope', () => {
  it('reads the captured s1 envelope as is', () => {
    const env = parseEnvelope(s1.lpush_raw);
    assert.deepEqual(env, s1.envelope);
    assert.equal(env.headers.id, '958b07a6-a3d5-4f9d-b30a-edbac209b952');
    assert.equal(env.properties.delivery_tag, '30373c43-3363-403f-8984-dd8771508550');
    assert.deepEqual(env.properties.delivery_info, { exchange: '', routing_key: 'celery' });
  });

  it('defaults absent headers to {} (protocol 1 style)', () => {
    const raw = JSON.stringify({ body: 'e30=', 'content-type': 'application/json', properties: {} });
    assert.deepEqual(parseEnvelope(raw).headers, {});
  });

  it('refuses what is not an envelope', () => {
    malformed(() => parseEnvelope('not json {'), /not JSON/);
    malformed(() => parseEnvelope('[1,2]'), /not a JSON object/);
    malformed(() => parseEnvelope('"text"'), /not a JSON object/);
    malformed(() => parseEnvelope('null'), /not a JSON object/);
  });

  it('names the task id when the headers carry one', () => {
    malformed(() => parseEnvelope(envelope({ body: undefined })), /body is missing/, 'env-1');
    malformed(() => parseEnvelope(envelope({ body: 42 as unknown as string })), /body is not a string/, 'env-1');
    malformed(() => parseEnvelope(envelope({ properties: undefined as never })), /properties are missing/, 'env-1');
    malformed(() => parseEnvelope(envelope({ properties: 'x' as never })), /properties is not an object/, 'env-1');
    malformed(() => parseEnvelope(envelope({ headers: [1] as never })), /headers is not an object/, null);
  });
});

describe('decodeBody', () => {
  it('base64-decodes the s1 body', () => {
    assert.deepEqual(decodeBody(parseEnvelope(s1.lpush_raw)), s1.decoded_body);
  });

  it('accepts a plain-text body without body_encoding (s12 m2)', () => {
    const env = parseEnvelope(JSON.stringify(s12.cases.m2_plain_body_no_body_encoding.message));
    assert.deepEqual(decodeBody(env), [[2, 3], {}, { callbacks: null, errbacks: null, chain: null, chord: null }]);
  });

  it('refuses a missing content type (s12 m6)', () => {
    const env = parseEnvelope(JSON.stringify(s12.cases.m6_no_content_type.message));
    malformed(() => decodeBody(env), /content-type is missing/, 'min-6');
  });

  it('refuses yaml and pickle, naming the type (s12 m9)', () => {
    const env = parseEnvelope(JSON.stringify(s12.cases.m9_not_accepted_content_type.message));
    malformed(() => decodeBody(env), /^content type application\/x-yaml is not accepted \(JSON only\)$/, 'min-9');
    const pickle = parseEnvelope(envelope({ 'content-type': 'application/x-python-serialize' }));
    malformed(() => decodeBody(pickle), /application\/x-python-serialize \(pickle\) is not accepted/, 'env-1');
  });

  it('refuses broken bodies', () => {
    malformed(() => decodeBody(parseEnvelope(envelope({ body: 'not base64 !!' }))), /not valid base64/, 'env-1');
    const notJson = Buffer.from('[1, 2', 'utf8').toString('base64');
    malformed(() => decodeBody(parseEnvelope(envelope({ body: notJson }))), /not valid JSON/, 'env-1');
    const gzip = envelope({ properties: { delivery_tag: 'd', body_encoding: 'gzip' } });
    malformed(() => decodeBody(parseEnvelope(gzip)), /body_encoding "gzip" is not supported/, 'env-1');
  });

  it('is the inverse of encodeBody, non-ASCII included', () => {
    const value = [['h\u00e9llo \u2603', 1.5, null, true], { k: { '\u00fc': [] } }, { chord: null }];
    const body = encodeBody(value);
    assert.match(body, /^[A-Za-z0-9+/]+=*$/);
    assert.deepEqual(decodeBody(parseEnvelope(envelope({ body }))), value);
    assert.equal(Buffer.from(encodeBody({ a: 1 }), 'base64').toString('utf8'), '{"a":1}');
  });
});

describe('markRedelivered', () => {
  it('turns the unacked copy into what kombu restores (s3)', () => {
    const [stored] = JSON.parse(s3.unacked_hash_entry_example.value_raw);
    const restored = JSON.parse(markRedelivered(JSON.stringify(stored)));
    assert.deepEqual(restored, JSON.parse(s3.restored_message_example.raw));
    assert.equal(Object.keys(restored.headers).at(-1), 'redelivered');
    assert.equal(restored.properties.delivery_tag, stored.properties.delivery_tag);
  });

  it('sets only the header flag when there is no delivery_info, like kombu', () => {
    const raw = JSON.stringify(s12.cases.m4_no_delivery_info.message);
    const out = JSON.parse(markRedelivered(raw));
    assert.equal(out.headers.redelivered, true);
    assert.equal(out.properties.delivery_info, undefined);
  });

  it('gives a new delivery tag when asked, so a stale reservation cannot ack the restored message', () => {
    const [stored] = JSON.parse(s3.unacked_hash_entry_example.value_raw);
    const out = JSON.parse(markRedelivered(JSON.stringify(stored), 'fresh-tag'));
    assert.equal(out.properties.delivery_tag, 'fresh-tag');
    assert.equal(out.properties.delivery_info.redelivered, true);
  });

  it('leaves input that is not an envelope object unchanged (it is dead-lettered later)', () => {
    assert.equal(markRedelivered('{'), '{');
    assert.equal(markRedelivered('3'), '3');
  });
});
