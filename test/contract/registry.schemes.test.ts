// URL schemes: unknown ones fail clearly, sqlite:// paths resolve as documented, and an app runs end to end on
// `sqlite://.celeriac/celeriac.db` (broker and backend in one file) and on `memory://` with nothing installed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Celeriac, Worker } from 'celeriac';
import { createBroker } from '../../src/broker/registry.ts';
import { createBackend } from '../../src/backend/registry.ts';
import { sqlitePathFromUrl } from '../../src/stores/sqlite/database.ts';
import { quietLogger } from '../helpers/logs.ts';
import { DEFAULT_BROKER_OPTIONS } from './subjects.ts';

const dir = mkdtempSync(join(tmpdir(), 'celeriac-schemes-'));
const home = process.cwd();
after(() => {
  process.chdir(home);
  rmSync(dir, { recursive: true, force: true });
});

test('an unknown scheme names the known ones and the closest', async () => {
  await assert.rejects(createBroker('sqlit://x.db', DEFAULT_BROKER_OPTIONS), (e: any) => {
    assert.equal(e.code, 'E_UNKNOWN_SCHEME');
    for (const s of ['redis://', 'sqlite://', 'memory://']) assert.ok(e.message.includes(s), e.message);
    assert.match(e.message, /did you mean "sqlite:\/\/"/);
    return true;
  });
  await assert.rejects(createBackend('memroy://', { resultExpires: null }), (e: any) => {
    assert.equal(e.code, 'E_UNKNOWN_SCHEME');
    for (const s of ['redis://', 'sqlite://', 'memory://']) assert.ok(e.message.includes(s), e.message);
    assert.match(e.message, /did you mean "memory:\/\/"/);
    return true;
  });
});

test('sqlite:// paths: relative to the working directory, or absolute with four slashes', () => {
  assert.equal(sqlitePathFromUrl('sqlite://.celeriac/celeriac.db'), join(process.cwd(), '.celeriac/celeriac.db'));
  assert.equal(sqlitePathFromUrl('sqlite:///app.db'), join(process.cwd(), 'app.db'));
  assert.equal(sqlitePathFromUrl('sqlite:////var/lib/app/celeriac.db'), '/var/lib/app/celeriac.db');
  assert.throws(() => sqlitePathFromUrl('sqlite://'), (e: any) => e.code === 'E_BAD_URL');
  assert.throws(() => sqlitePathFromUrl('sqlite://some/dir/'), (e: any) => e.code === 'E_BAD_URL');
});

async function roundTrip(url: string): Promise<void> {
  const app = new Celeriac('schemes', { broker: url, backend: url });
  const add = app.task('schemes.add', (a: number, b: number) => a + b);
  const worker = new Worker(app, { logger: quietLogger(), concurrency: 5 });
  await worker.start();
  try {
    const results = await Promise.all([1, 2, 3].map(async (i) => (await add.delay(i, 10)).get({ timeout: 5000 })));
    assert.deepEqual(results, [11, 12, 13]);
    const waiting = add.delay(100, 1);
    assert.equal(await (await waiting).get({ timeout: 5000 }), 101);
  } finally {
    await worker.stop();
    await app.close();
  }
}

test('sqlite://.celeriac/celeriac.db serves as broker and result backend at once (directory created)', async () => {
  process.chdir(dir);
  try {
    await roundTrip('sqlite://.celeriac/celeriac.db');
    assert.ok(existsSync(join(dir, '.celeriac', 'celeriac.db')));
  } finally {
    process.chdir(home);
  }
});

test('memory:// runs an app and its worker in one process', async () => {
  await roundTrip('memory://schemes');
});
