// The canvas on the real stores (the memory tier is test/unit/canvas.test.ts): chain, group, chord with a failing
// part and its errback, starmap/chunks, a saved group, on the SQLite default and on redis-server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Celeriac, GroupResult, TaskError, Worker, chain, chord, group } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { quietLogger } from '../helpers/logs.ts';

let redis: RedisServer;
let dir: string;
before(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'celeriac-canvas-'));
});
after(async () => {
  await redis.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const stores: Array<[string, () => { broker: string; backend: string }]> = [
  ['sqlite', () => {
    const url = `sqlite://${join(dir, 'canvas.db')}`;
    return { broker: url, backend: url };
  }],
  ['redis', () => ({ broker: redis.url(0), backend: redis.url(1) })],
];

for (const [kind, urls] of stores) {
  describe(`canvas on ${kind}`, () => {
    test('chain, group, chord (and a failing one with its errback), starmap, chunks, a saved group', async () => {
      const app = new Celeriac('canvas', urls());
      const add = app.task('cs.add', (a: number, b: number) => a + b);
      const mul = app.task('cs.mul', (a: number, b: number) => a * b);
      const xsum = app.task('cs.xsum', (xs: number[]) => xs.reduce((s, x) => s + x, 0));
      const boom = app.task('cs.boom', () => {
        throw new RangeError('boom');
      }, { maxRetries: 0 });
      const errbacks: unknown[] = [];
      app.task('cs.onerr', (id: string) => {
        errbacks.push(id);
      });
      const worker = new Worker(app, { logger: quietLogger() });
      await worker.start();
      try {
        assert.equal(await (await chain(add.s(1, 2), add.s(3), mul.s(10)).applyAsync()).get({ timeout: 10_000 }), 60);
        const g = await group(Array.from({ length: 20 }, (_, i) => add.s(i, i))).applyAsync();
        assert.deepEqual(await g.get({ timeout: 10_000 }), Array.from({ length: 20 }, (_, i) => 2 * i));
        assert.equal(await (await chord(Array.from({ length: 10 }, (_, i) => add.s(i, i)), xsum.s()).applyAsync())
          .get({ timeout: 10_000 }), 90);
        const body = xsum.s();
        body.linkError(app.signature('cs.onerr'));
        const failing = await chord([add.s(1, 1), boom.s()], body).applyAsync();
        await assert.rejects(failing.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskError && e.excType === 'ChordError');
        const deadline = Date.now() + 10_000;
        while (errbacks.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
        assert.deepEqual(errbacks, [failing.id], 'the body errback ran once, with the body id');
        assert.deepEqual(await (await add.starmap([[1, 2], [3, 4]]).delay()).get({ timeout: 10_000 }), [3, 7]);
        const chunks = await add.chunks([[1, 1], [2, 2], [3, 3]], 2).applyAsync();
        assert.deepEqual(await chunks.get({ timeout: 10_000 }), [[2, 4], [6]]);
        await g.save();
        const restored = await app.GroupResult.restore<number>(g.id);
        assert.ok(restored instanceof GroupResult);
        assert.equal(await restored.completedCount(), 20);
      } finally {
        await worker.stop();
        await app.close();
      }
    });
  });
}
