// Cold shutdown with Redis gone (issue "Nothing silent", item 9): a CLI worker whose redis-server was killed ends
// at once on a second SIGTERM, and within its --shutdown-timeout (plus a little) on a single one. Its messages
// come back by lease.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { celeriac, type Proc } from '../helpers/processes.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function workerOnDeadRedis(redis: RedisServer, shutdownTimeout: number): Promise<Proc> {
  const w = celeriac(['-A', 'test/apps/basic', 'worker', '-l', 'info', '--shutdown-timeout', String(shutdownTimeout)],
    { CELERIAC_BROKER_URL: redis.url(0), CELERIAC_RESULT_BACKEND: redis.url(1) });
  await w.waitFor(' ready.');
  await redis.stop(); // SIGKILL: Redis is gone, not closing politely
  await sleep(1500); // the worker notices: its polls fail and it starts reconnecting
  return w;
}

/** Milliseconds from now until the process exits (or `limit`, when it is still running then). */
async function exitWithin(w: Proc, limit: number): Promise<number> {
  const t0 = Date.now();
  const code = await Promise.race([w.exited, sleep(limit).then(() => 'still running' as const)]);
  const took = Date.now() - t0;
  if (code === 'still running') w.kill('SIGKILL');
  return code === 'still running' ? Infinity : took;
}

describe('cold shutdown with Redis gone', () => {
  let redis: RedisServer;
  afterEach(async () => {
    await redis.dispose();
  });

  test('SIGTERM then SIGTERM: the worker exits within 2 s of the second signal', async () => {
    redis = await startRedis();
    const w = await workerOnDeadRedis(redis, 25);
    w.kill('SIGTERM');
    await sleep(500);
    w.kill('SIGTERM');
    const took = await exitWithin(w, 15_000);
    console.log(`exit ${took} ms after the second SIGTERM`);
    assert.ok(took <= 2000, `still running ${took} ms after the second SIGTERM:\n${w.out}`);
    assert.match(w.out, /Cold shutdown/);
  });

  test('a single SIGTERM with Redis gone ends within --shutdown-timeout and a few seconds', async () => {
    redis = await startRedis();
    const w = await workerOnDeadRedis(redis, 2);
    w.kill('SIGTERM');
    const took = await exitWithin(w, 20_000);
    console.log(`exit ${took} ms after SIGTERM (--shutdown-timeout 2)`);
    assert.ok(took <= 2000 + 3000, `still running ${took} ms after SIGTERM:\n${w.out}`);
  });
});
