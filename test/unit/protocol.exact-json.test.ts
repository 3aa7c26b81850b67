// Exact JSON (src/common/exact-json.ts): what Python's json writes, read and written without loss, and ordinary
// JSON unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseJson, stringifyJson } from '../../src/common/exact-json.ts';

test('integers past 2^53 become BigInt; safe ones, floats and exponents stay numbers', () => {
  const v = parseJson('[9007199254740993, -18446744073709551617, 9007199254740991, 1.5, 1e300, 12345678901234567.5, "12345678901234567890"]');
  assert.deepEqual(v, [9007199254740993n, -18446744073709551617n, 9007199254740991, 1.5, 1e300, 12345678901234567.5, '12345678901234567890']);
});

test('NaN, Infinity and -Infinity (Python json) are read as numbers', () => {
  const v = parseJson('{"a": NaN, "b": Infinity, "c": [-Infinity], "s": "NaN"}') as Record<string, unknown>;
  assert.ok(Number.isNaN(v.a));
  assert.equal(v.b, Infinity);
  assert.deepEqual(v.c, [-Infinity]);
  assert.equal(v.s, 'NaN');
});

test('stringify writes BigInt digits and Python words, otherwise as JSON.stringify', () => {
  assert.equal(stringifyJson([2n ** 64n + 1n, NaN, Infinity, -Infinity, null, 'x', { d: new Date(0), u: undefined }]),
    '[18446744073709551617,NaN,Infinity,-Infinity,null,"x",{"d":"1970-01-01T00:00:00.000Z"}]');
  const plain = { a: [1, 2.5, 'three', null, true], b: { c: 'h\u00e9llo' } };
  assert.equal(stringifyJson(plain), JSON.stringify(plain));
  assert.equal(stringifyJson(undefined), undefined);
});

test('round trip is exact, and the exact parser keeps JSON.parse rules (__proto__ is a plain key, bad text throws)', () => {
  const value = { big: 123456789012345678901234567890n, inf: Infinity, arr: [1, { x: -1e-7 }], s: 'a\\"b\u2603' };
  assert.deepEqual(parseJson(stringifyJson(value)!), value);
  const p = parseJson('{"__proto__": {"polluted": 1}, "n": 12345678901234567890}') as Record<string, unknown>;
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.getPrototypeOf(p), Object.prototype);
  assert.deepEqual(Object.keys(p), ['__proto__', 'n']);
  for (const bad of ['[1,', '{"a" 1}', '12345678901234567890 x', '[NaNa]', '"unterminated', '']) {
    assert.throws(() => parseJson(bad), SyntaxError, bad);
  }
});

test('maxMessageBytes is the payload limit: payloadBytes() reads the base64 body size without parsing', async () => {
  const { encodeBody, payloadBytes, envelopeLimit } = await import('../../src/protocol/index.ts');
  for (const n of [0, 1, 2, 3, 1000, 100_001]) {
    const body = [['x'.repeat(n)], {}, {}];
    const raw = JSON.stringify({ body: encodeBody(body), 'content-type': 'application/json', headers: { body: 'decoy' } });
    assert.equal(payloadBytes(raw), Buffer.byteLength(JSON.stringify(body)), `n=${n}`);
  }
  assert.ok(envelopeLimit(3 * 1024) >= 4 * 1024 + 64 * 1024);
});
