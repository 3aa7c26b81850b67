#!/usr/bin/env node
// Captures again what real Python Celery writes to Redis and compares it with the committed fixtures in
// test/fixtures/celery/, so that a change of Celery, kombu or redis-py (or of the peer) shows up as drift.
//
//   node scripts/capture-fixtures.mjs                 capture, compare, print a drift report; exit 1 on drift
//   node scripts/capture-fixtures.mjs --write         the same, and write the fresh captures to a new temp folder
//   node scripts/capture-fixtures.mjs --write=DIR     ... to DIR (--write=test/fixtures/celery replaces the fixtures)
//   node scripts/capture-fixtures.mjs --only=s2,s13   only some scenarios (s1, s2, s4, s13)
//   node scripts/capture-fixtures.mjs --against=DIR   compare with the files in DIR instead of the fixtures
//
// It starts its own redis-server on a free loopback port (no persistence), watches it with MONITOR, and runs
// /usr/bin/python3 with test/peer/capture.py (client actions) and test/peer/celery_peer.py (a worker):
//   s2   apply_async variants, no worker: each LPUSHed string and the list it went to
//   s1   add.delay(2, 3) with no worker, then a worker runs it: the LPUSHed string and the stored result
//   s4   failures and self.retry(): every published message and every result write, in order
//   s13  result records written by hand, read back by a Python client: what .get() returned or raised
// The comparison is structural: ids, timestamps, host names, pids and tracebacks' file lines are replaced by
// placeholders (the same id gets the same placeholder within one unit, so "root_id equals id" is still checked).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
let FIXTURES = join(ROOT, 'test/fixtures/celery');
const PEER_DIR = join(ROOT, 'test/peer');
const PYTHON = '/usr/bin/python3';
const SEP = '\x06\x16';

// ---------------------------------------------------------------- command line

const opts = { write: null, only: null };
for (const arg of process.argv.slice(2)) {
  if (arg === '--write') opts.write = '';
  else if (arg.startsWith('--write=')) opts.write = arg.slice('--write='.length);
  else if (arg.startsWith('--only=')) opts.only = new Set(arg.slice('--only='.length).split(','));
  else if (arg.startsWith('--against=')) FIXTURES = arg.slice('--against='.length);
  else {
    console.error(`unknown argument ${arg}\nusage: node scripts/capture-fixtures.mjs [--write[=DIR]] [--only=s1,s2,s4,s13] [--against=DIR]`);
    process.exit(2);
  }
}
const wanted = (s) => !opts.only || opts.only.has(s);

// ---------------------------------------------------------------- a minimal Redis client (RESP over a socket)

class Resp {
  constructor(port) {
    this.buf = Buffer.alloc(0);
    this.waiting = [];
    this.onPush = null;
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (;;) {
        const parsed = parseReply(this.buf, 0);
        if (!parsed) break;
        this.buf = this.buf.subarray(parsed.end);
        if (this.onPush) this.onPush(parsed.value);
        else this.waiting.shift()?.resolve(parsed.value);
      }
    });
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
  }

  async call(...args) {
    await this.ready;
    const parts = [`*${args.length}\r\n`];
    for (const a of args) parts.push(`$${Buffer.byteLength(String(a))}\r\n${a}\r\n`);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.socket.write(parts.join(''));
    });
  }

  /** Turns this connection into a MONITOR stream: every later reply is one command line, handed to onLine. */
  async monitor(onLine) {
    await this.ready;
    await new Promise((resolve) => {
      let confirmed = false;
      this.onPush = (reply) => {
        if (confirmed) onLine(reply);
        else {
          confirmed = true; // the +OK
          resolve();
        }
      };
      this.socket.write('*1\r\n$7\r\nMONITOR\r\n');
    });
  }

  close() {
    this.socket.destroy();
  }
}

/** One RESP2 reply from buf at offset i, or null when it is not complete yet. Bulk strings come back as Buffers. */
function parseReply(buf, i) {
  const eol = buf.indexOf('\r\n', i);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[i]);
  const line = buf.toString('utf8', i + 1, eol);
  const next = eol + 2;
  if (type === '+') return { value: line, end: next };
  if (type === '-') return { value: new Error(line), end: next };
  if (type === ':') return { value: Number(line), end: next };
  if (type === '$') {
    const n = Number(line);
    if (n < 0) return { value: null, end: next };
    if (buf.length < next + n + 2) return null;
    return { value: buf.subarray(next, next + n), end: next + n + 2 };
  }
  if (type === '*') {
    const n = Number(line);
    const items = [];
    let at = next;
    for (let k = 0; k < n; k++) {
      const item = parseReply(buf, at);
      if (!item) return null;
      items.push(item.value);
      at = item.end;
    }
    return { value: n < 0 ? null : items, end: at };
  }
  throw new Error(`unexpected RESP type ${type}`);
}

/**
 * One MONITOR line (`1795999147.68 [0 127.0.0.1:48454] "LPUSH" "celery" "{\"body\": …}"`) as
 * { ts, db, client, args }. Redis quotes each argument and escapes \\ \" \n \r \t \a \b and other bytes as \xHH.
 */
function parseMonitorLine(line) {
  const m = /^(\d+\.\d+) \[(\d+) ([^\]]+)\] (.*)$/s.exec(line);
  if (!m) return null;
  const args = [];
  const text = m[4];
  let i = 0;
  while (i < text.length) {
    if (text[i] === ' ') { i++; continue; }
    if (text[i] !== '"') throw new Error(`unquoted MONITOR argument in ${line}`);
    i++;
    const bytes = [];
    while (text[i] !== '"') {
      if (text[i] === '\\') {
        const e = text[i + 1];
        if (e === 'x') {
          bytes.push(parseInt(text.slice(i + 2, i + 4), 16));
          i += 4;
          continue;
        }
        bytes.push({ n: 10, r: 13, t: 9, a: 7, b: 8 }[e] ?? e.charCodeAt(0));
        i += 2;
        continue;
      }
      // printable ASCII only; anything else was escaped by the server
      bytes.push(text.charCodeAt(i));
      i++;
    }
    i++;
    args.push(Buffer.from(bytes).toString('utf8'));
  }
  return { ts: Number(m[1]), db: Number(m[2]), client: m[3], cmd: args[0].toUpperCase(), args: args.slice(1), line };
}

// ---------------------------------------------------------------- processes

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function start(cmd, args, env = {}) {
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const proc = { child, out: '' };
  child.stdout.on('data', (d) => (proc.out += d));
  child.stderr.on('data', (d) => (proc.out += d));
  proc.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    children.delete(child);
    resolve(code ?? signal);
  }));
  return proc;
}

async function until(check, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs test/peer/capture.py <scenario> to its end; resolves with the JSON it printed last. */
async function pyCapture(scenario, env) {
  const proc = start(PYTHON, [join(PEER_DIR, 'capture.py'), scenario], env);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 120_000);
  const code = await proc.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`capture.py ${scenario} exited with ${code}:\n${proc.out}`);
  const line = proc.out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (!line) throw new Error(`capture.py ${scenario} printed no JSON:\n${proc.out}`);
  return JSON.parse(line);
}

// ---------------------------------------------------------------- what was captured, shaped like the fixtures

const b64json = (b64) => JSON.parse(Buffer.from(b64, 'base64').toString('utf8'));
const hexOrNull = (key) => (key.includes(SEP) ? Buffer.from(key, 'utf8').toString('hex') : null);

/** An LPUSH seen by MONITOR, as the fixtures record it. */
function published(cmd, withKeyHex) {
  const [key, raw] = cmd.args;
  const envelope = JSON.parse(raw);
  const entry = { command: 'LPUSH', db: cmd.db, key };
  if (withKeyHex) entry.key_bytes_hex = hexOrNull(key);
  return { ...entry, raw, envelope, decoded_body: b64json(envelope.body) };
}

const lpushes = (log) => log.filter((c) => c.cmd === 'LPUSH');
const idOf = (c) => JSON.parse(c.args[1]).headers?.id;

function captureS2(log, ids) {
  const variants = {};
  for (const [name, id] of Object.entries(ids)) {
    const hits = lpushes(log).filter((c) => idOf(c) === id);
    if (name === 'exchange_unbound') {
      variants[name] = hits.length
        ? { task_id: id, note: `LPUSHed ${hits.length} time(s): the message was NOT dropped` }
        : { task_id: id, note: 'NO LPUSH OBSERVED: message silently dropped (exchange has no bindings in _kombu.binding.<exchange>)' };
      continue;
    }
    if (hits.length !== 1) throw new Error(`s2 ${name}: expected one LPUSH of ${id}, saw ${hits.length}`);
    variants[name] = published(hits[0], true);
  }
  return { scenario: 'apply_async option variants (Python client, no worker running)', variants };
}

/** How the worker stored one result, in words, from the commands its connection sent around the SETEX. */
function describeResultWrite(log, key) {
  const i = log.findIndex((c) => c.cmd === 'SETEX' && c.args[0] === key);
  if (i < 0) return 'no SETEX seen';
  const mine = log.filter((c) => c.client === log[i].client);
  const at = mine.indexOf(log[i]);
  const names = mine.slice(Math.max(0, at - 2), at + 3).map((c) => c.cmd);
  const ttl = log[i].args[1];
  const get = mine.slice(0, at).some((c) => c.cmd === 'GET' && c.args[0] === key);
  if (names.join(' ') === 'GET MULTI SETEX PUBLISH EXEC' || (names.slice(-4).join(' ') === 'MULTI SETEX PUBLISH EXEC' && get)) {
    return `MULTI; SETEX <key> ${ttl} <json>; PUBLISH <key> <json>; EXEC (preceded by GET <key>)`;
  }
  return `seen: ${names.join('; ')}`;
}

function captureS1(log, taskId) {
  const [push] = lpushes(log).filter((c) => idOf(c) === taskId);
  if (!push) throw new Error('s1: the LPUSH of add.delay(2, 3) was not seen');
  const { raw, envelope, decoded_body } = published(push, false);
  const resultKey = `celery-task-meta-${taskId}`;
  const write = log.find((c) => c.cmd === 'SETEX' && c.args[0] === resultKey);
  if (!write) throw new Error('s1: the worker stored no result');
  const hset = log.find((c) => c.cmd === 'HSET' && c.args[0] === 'unacked' && c.args[1] === envelope.properties.delivery_tag);
  let unacked = 'no HSET unacked seen';
  if (hset) {
    const v = JSON.parse(hset.args[2]);
    const shape = Array.isArray(v) && v.length === 3 && v[0]?.headers?.id === taskId && typeof v[1] === 'string' && typeof v[2] === 'string';
    unacked = shape ? '[<envelope JSON object>, "<exchange>", "<routing_key>"] (see logs/s1_worker_consume.log HSET unacked)' : `seen: ${hset.args[2].slice(0, 200)}`;
  }
  return {
    scenario: 'add.delay(2, 3) from Python client; worker off at send time, then started',
    queue_list_key: push.args[0],
    lpush_raw: raw,
    envelope,
    decoded_body,
    result_key: resultKey,
    result_db: write.db,
    result_write: describeResultWrite(log, resultKey),
    result_raw: write.args[2],
    result_decoded: JSON.parse(write.args[2]),
    unacked_hash_value_while_reserved: unacked,
  };
}

function captureS4(log, ids) {
  const out = {
    scenario: 'fail/raise and self.retry(countdown=1); retrying(fail_times, countdown) with max_retries=5',
    task_ids: ids,
  };
  for (const [name, id] of Object.entries(ids)) {
    let messages = lpushes(log).filter((c) => idOf(c) === id).map((c) => published(c, false));
    const writes = log.filter((c) => c.cmd === 'SETEX' && c.args[0] === `celery-task-meta-${id}`)
      .map((c) => ({ ttl_arg: Number(c.args[1]), raw: c.args[2], decoded: JSON.parse(c.args[2]) }));
    const section = { messages_published_in_order: messages, result_writes_in_order: writes };
    if (name === 'retrying_exhausted') {
      messages = [...messages.slice(0, 2), messages[messages.length - 1]];
      section.messages_published_in_order = messages;
      section.note = 'messages trimmed to first two and last (retries header 0,1,...,5)';
    }
    out[name] = section;
  }
  return out;
}

// ---------------------------------------------------------------- structural comparison

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?$/;
const ORIGIN = /^gen(\d+)@(.+)$/;
const RAW_KEYS = new Set(['raw', 'lpush_raw', 'result_raw']);

/**
 * A copy of a fixture value with what differs from run to run replaced by placeholders. `labels` numbers ids and
 * pids in order of appearance, so equal ids stay equal; JSON strings stored as text (raw) and base64 bodies are
 * decoded first, so their content is compared rather than their bytes.
 */
function normalize(value, labels, key = '') {
  const label = (kind, v) => {
    const k = `${kind}:${v}`;
    if (!labels.has(k)) labels.set(k, `<${kind}${[...labels.keys()].filter((x) => x.startsWith(`${kind}:`)).length + 1}>`);
    return labels.get(k);
  };
  if (Array.isArray(value)) return value.map((v) => normalize(v, labels));
  if (value && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === 'body' && typeof v === 'string' && value.properties?.body_encoding === 'base64') {
        out[k] = { base64_of: normalize(b64json(v), labels) };
      } else out[k] = normalize(v, labels, k);
    }
    return out;
  }
  if (typeof value === 'number') return key === 'seconds_waited' ? Math.round(value) : value;
  if (typeof value !== 'string') return value;
  if (RAW_KEYS.has(key)) return { json_text: normalize(JSON.parse(value), labels) };
  if (value.startsWith('Traceback (most recent call last):')) {
    return `<traceback ending ${JSON.stringify(value.trim().split('\n').pop())}>`;
  }
  if (ISO.test(value)) {
    const [, frac, tz] = ISO.exec(value);
    return `<datetime${frac ? ' with fraction' : ''}${tz ? ' with offset' : ' naive'}>`;
  }
  const origin = ORIGIN.exec(value);
  if (origin) return `gen${label('pid', origin[1])}@<host>`;
  if (key === 'expiration' && /^\d{7,}$/.test(value)) return '<ms until an absolute expiry>';
  return value.replace(UUID, (id) => label('id', id));
}

/** Paths at which two normalized values differ (at most `limit`). */
function differences(a, b, path = '', found = [], limit = 25) {
  if (found.length >= limit) return found;
  const kind = (v) => (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v);
  if (kind(a) !== kind(b)) {
    found.push(`${path || '.'}: fixture ${JSON.stringify(a)?.slice(0, 160)} / capture ${JSON.stringify(b)?.slice(0, 160)}`);
  } else if (kind(a) === 'array') {
    if (a.length !== b.length) found.push(`${path}: fixture has ${a.length} items, capture ${b.length}`);
    for (let i = 0; i < Math.min(a.length, b.length); i++) differences(a[i], b[i], `${path}[${i}]`, found, limit);
  } else if (kind(a) === 'object') {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    for (const k of ka) if (!(k in b)) found.push(`${path}.${k}: only in the fixture`);
    for (const k of kb) if (!(k in a)) found.push(`${path}.${k}: only in the capture`);
    const common = ka.filter((k) => k in b);
    if (common.join() !== kb.filter((k) => k in a).join()) found.push(`${path}: keys in another order (${common.join(', ')})`);
    for (const k of common) differences(a[k], b[k], `${path}.${k}`, found, limit);
  } else if (a !== b) {
    found.push(`${path || '.'}: fixture ${JSON.stringify(a).slice(0, 160)} / capture ${JSON.stringify(b).slice(0, 160)}`);
  }
  return found;
}

/** The units compared on their own (each with its own id numbering): s2 variant by variant, s4 task by task, … */
function units(file, data) {
  if (file.startsWith('s2_')) return Object.entries(data.variants).map(([k, v]) => [`variants.${k}`, v]);
  if (file.startsWith('s4_')) return Object.keys(data).filter((k) => k !== 'task_ids').map((k) => [k, data[k]]);
  if (file.startsWith('s13_')) return Object.entries(data.cases).map(([k, v]) => [`cases.${k}`, v]);
  return [['(whole file)', data]];
}

function compare(file, captured) {
  const committed = JSON.parse(readFileSync(join(FIXTURES, file), 'utf8'));
  const fixtureUnits = new Map(units(file, committed));
  const capturedUnits = new Map(units(file, captured));
  const report = [];
  for (const [name, value] of fixtureUnits) {
    if (!capturedUnits.has(name)) {
      report.push(`${name}: in the fixture, not captured`);
      continue;
    }
    for (const d of differences(normalize(value, new Map()), normalize(capturedUnits.get(name), new Map()))) {
      report.push(`${name} ${d}`);
    }
  }
  for (const name of capturedUnits.keys()) if (!fixtureUnits.has(name)) report.push(`${name}: captured, not in the fixture`);
  return { units: fixtureUnits.size, report };
}

// ---------------------------------------------------------------- the run

async function main() {
  const port = await freePort();
  const redis = start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  const env = { CELERY_PEER_BROKER: `redis://127.0.0.1:${port}/0`, CELERY_PEER_BACKEND: `redis://127.0.0.1:${port}/1` };
  let worker = null;
  let control = null;
  let monitor = null;
  try {
    await until(async () => {
      const probe = new Resp(port);
      try {
        return (await probe.call('PING')) === 'PONG';
      } catch {
        return false;
      } finally {
        probe.close();
      }
    }, 'redis-server to answer', 10_000);
    control = new Resp(port);
    monitor = new Resp(port);
    const log = [];
    await monitor.monitor((line) => {
      const cmd = typeof line === 'string' ? parseMonitorLine(line) : null;
      if (cmd) log.push(cmd);
    });
    const since = (mark) => log.slice(mark);
    const captures = {};
    console.log(`redis-server on 127.0.0.1:${port}; Python ${PYTHON}; peer ${PEER_DIR}`);

    if (wanted('s2')) {
      const mark = log.length;
      const ids = await pyCapture('s2', env);
      await until(() => lpushes(since(mark)).length >= Object.keys(ids).length - 1, 's2 LPUSHes in MONITOR', 5000);
      captures['s2_apply_async_variants.json'] = captureS2(since(mark), ids);
      await control.call('FLUSHALL'); // nobody is to run these
    }
    const needWorker = wanted('s1') || wanted('s4');
    let s1Id = null;
    const mark1 = log.length;
    if (wanted('s1')) {
      s1Id = (await pyCapture('s1', env)).task_id;
    }
    if (needWorker) {
      worker = start(PYTHON, [join(PEER_DIR, 'celery_peer.py'), 'worker', '-Q', 'celery', '-c', '1', '-n', 'capture@%h'], env);
      await until(() => /\bready\.\s*$/m.test(worker.out), `the Python worker to start; its output:\n${worker.out}`, 60_000);
    }
    if (s1Id) {
      const stored = () => since(mark1).some((c) => c.cmd === 'SETEX' && c.args[0] === `celery-task-meta-${s1Id}`);
      await until(stored, 's1: the worker to store the result', 20_000);
      await new Promise((r) => setTimeout(r, 300)); // the EXEC after it
      captures['s1_add_delay.json'] = captureS1(since(mark1), s1Id);
    }
    if (wanted('s4')) {
      const mark = log.length;
      const ids = await pyCapture('s4', env);
      await new Promise((r) => setTimeout(r, 300)); // MONITOR lines trail the replies a little
      captures['s4_failure_and_retry.json'] = captureS4(since(mark), ids);
    }
    if (worker) {
      worker.child.kill('SIGTERM');
      await worker.exited;
      worker = null;
    }
    if (wanted('s13')) {
      const cases = await pyCapture('s13', env);
      captures['s13_result_records_vs_python_client.json'] = {
        scenario: 'result records written by hand into the backend db (as a non-Python worker would), read by a Python client with AsyncResult(id).get()',
        cases,
      };
    }

    let drift = 0;
    console.log('');
    for (const [file, data] of Object.entries(captures)) {
      const { units: n, report } = compare(file, data);
      drift += report.length;
      console.log(`${report.length ? 'DRIFT' : 'same '}  ${file} (${n} units compared)`);
      for (const line of report) console.log(`         ${line}`);
    }
    if (opts.write !== null) {
      const dir = opts.write || mkdtempSync(join(tmpdir(), 'celeriac-capture-'));
      mkdirSync(dir, { recursive: true });
      for (const [file, data] of Object.entries(captures)) writeFileSync(join(dir, file), `${JSON.stringify(data, null, 2)}\n`);
      writeFileSync(join(dir, 'monitor.log'), `${log.map((c) => c.line).join('\n')}\n`);
      console.log(`\nwrote ${Object.keys(captures).length} capture(s) and monitor.log to ${dir}`);
    }
    console.log(drift ? `\n${drift} difference(s) from the committed fixtures` : '\nno drift: the captures match the committed fixtures');
    return drift ? 1 : 0;
  } finally {
    if (worker) {
      worker.child.kill('SIGTERM');
      await Promise.race([worker.exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
    monitor?.close();
    control?.close();
    redis.child.kill('SIGTERM');
    await redis.exited;
  }
}

main().then((code) => process.exit(code), (err) => {
  console.error(err?.stack ?? err);
  process.exit(2);
});
