// Security on Redis: ACL user and password from the URL, TLS with a CA from rediss:// options, passwords never
// printed, and size limits on messages and results.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Celeriac, Worker, TaskError, CeleriacError } from 'celeriac';
import { freePort, startRedis, type RedisServer } from '../helpers/redis.ts';
import { quietLogger } from '../helpers/logs.ts';
import { celeriac, exec } from '../helpers/processes.ts';

async function roundTrip(app: Celeriac): Promise<number> {
  const add = app.task('sec.add', (a: number, b: number) => a + b);
  const worker = new Worker(app, { logger: quietLogger() });
  await worker.start();
  try {
    return await (await add.delay(20, 22)).get({ timeout: 10_000 });
  } finally {
    await worker.stop();
    await app.close();
  }
}

describe('ACL user and password in the URL', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis({ args: ['--requirepass', 'admin-pass'] });
    const admin = new Redis({ port: redis.port, host: '127.0.0.1', password: 'admin-pass' });
    await admin.call('ACL', 'SETUSER', 'app', 'on', '>s3cret p@ss', '~*', '&*', '+@all');
    admin.disconnect();
  });
  after(async () => {
    await redis.dispose();
  });

  test('redis://user:password@host/db works for broker and backend', async () => {
    const url = (db: number) => `redis://app:${encodeURIComponent('s3cret p@ss')}@127.0.0.1:${redis.port}/${db}`;
    assert.equal(await roundTrip(new Celeriac('acl', { broker: url(3), backend: url(4) })), 42);
  });

  test('a wrong password is a clear error that does not print the password', async () => {
    const app = new Celeriac('acl', { broker: `redis://app:wrong-secret@127.0.0.1:${redis.port}/0` });
    app.task('sec.x', () => 1);
    await assert.rejects(app.sendTask('sec.x'), (e: unknown) => {
      assert.ok(e instanceof CeleriacError);
      assert.match(e.message, /WRONGPASS|invalid username-password/);
      assert.doesNotMatch(e.message, /wrong-secret/);
      return true;
    });
    await app.close();
  });

  test('the worker banner and logs mask the password', async () => {
    const env = {
      CELERIAC_BROKER_URL: `redis://app:${encodeURIComponent('s3cret p@ss')}@127.0.0.1:${redis.port}/5`,
      CELERIAC_RESULT_BACKEND: `redis://app:${encodeURIComponent('s3cret p@ss')}@127.0.0.1:${redis.port}/6`,
    };
    const w = celeriac(['-A', 'test/apps/basic', 'worker', '-l', 'debug'], env);
    await w.waitFor(' ready.');
    w.kill('SIGTERM');
    const { out } = await exec(w);
    assert.match(out, /transport: +redis:\/\/app:\*\*\*@127\.0\.0\.1/);
    assert.doesNotMatch(out, /s3cret/);
  });
});

describe('TLS with rediss://', () => {
  let redis: RedisServer;
  let tlsPort: number;
  let ca: string;
  let otherCa: string;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'celeriac-tls-'));
    const sh = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    sh(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=celeriac-test-ca']);
    sh(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    sh(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt',
      '-days', '1', '-extfile', 'ext.cnf']);
    ca = join(dir, 'ca.crt');
    sh(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.crt', '-days', '1', '-subj', '/CN=another-ca']);
    otherCa = join(dir, 'other.crt');
    tlsPort = await freePort();
    redis = await startRedis({ args: ['--tls-port', String(tlsPort), '--tls-cert-file', join(dir, 'server.crt'),
      '--tls-key-file', join(dir, 'server.key'), '--tls-ca-cert-file', ca, '--tls-auth-clients', 'no'] });
  });
  after(async () => {
    await redis.dispose();
  });

  test('rediss:// with ?ca= verifies the server and runs tasks', async () => {
    const url = (db: number) => `rediss://127.0.0.1:${tlsPort}/${db}?ca=${encodeURIComponent(ca)}`;
    assert.equal(await roundTrip(new Celeriac('tls', { broker: url(0), backend: url(1) })), 42);
  });

  test('rediss:// without the CA refuses an unknown certificate', async () => {
    const app = new Celeriac('tls', { broker: `rediss://127.0.0.1:${tlsPort}/0` });
    app.task('sec.x', () => 1);
    await assert.rejects(app.sendTask('sec.x'), /self.signed|unable to (verify|get)|certificate/i);
    await app.close();
  });

  test('a CA file that cannot be read is E_BAD_URL naming the file and the cause', async () => {
    const app = new Celeriac('tls', { broker: `rediss://127.0.0.1:${tlsPort}/0?ca=/missing/ca.pem` });
    app.task('sec.x', () => 1);
    await assert.rejects(app.sendTask('sec.x'), (e: unknown) => {
      assert.ok(e instanceof CeleriacError, String(e));
      assert.equal(e.code, 'E_BAD_URL');
      assert.match(e.message, /ca=\/missing\/ca\.pem/);
      assert.match(e.message, /ENOENT|no such file/);
      return true;
    });
    await app.close();
  });

  test('a worker given the wrong CA exits naming the TLS cause, the URL and E_CONNECTION', async () => {
    const url = `rediss://127.0.0.1:${tlsPort}/0?ca=${encodeURIComponent(otherCa)}`;
    const w = celeriac(['-A', 'test/apps/basic', 'worker', '-l', 'info'], { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: url });
    const { code, out } = await exec(w, 60_000);
    assert.notEqual(code, 0, out);
    assert.match(out, /self.signed|unable to (verify|get)|certificate/i);
    assert.match(out, new RegExp(`rediss://127\\.0\\.0\\.1:${tlsPort}`));
    assert.match(out, /\[E_CONNECTION\]/);
    assert.doesNotMatch(out, /max retries per request/i);
  });
});

describe('size limits', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis.dispose();
  });

  test('a message over maxMessageBytes is refused at call time; a result over maxResultBytes is a FAILURE', async () => {
    const app = new Celeriac('big', { broker: redis.url(0), backend: redis.url(1), maxMessageBytes: 4096, maxResultBytes: 4096 });
    const echo = app.task('sec.echo', (s: string) => s);
    const grow = app.task('sec.grow', (n: number) => 'x'.repeat(n));
    await assert.rejects(echo.delay('y'.repeat(10_000)), (e: unknown) => e instanceof CeleriacError && e.code === 'E_TOO_LARGE');
    const worker = new Worker(app, { logger: quietLogger() });
    await worker.start();
    try {
      assert.equal(await (await grow.delay(100)).get({ timeout: 5000 }), 'x'.repeat(100));
      await assert.rejects((await grow.delay(10_000)).get({ timeout: 5000 }),
        (e: unknown) => e instanceof TaskError && /over maxResultBytes/.test(e.message));
    } finally {
      await worker.stop();
      await app.close();
    }
  });
});
