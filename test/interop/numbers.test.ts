// Numbers exactly as Python has them, both ways, on a real redis-server: integers past 2^53 (as BigInt here),
// integers of 1e21 and more, and NaN/Infinity (which Python's json writes as bare words).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, Worker, type TaskContext } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { quietLogger } from '../helpers/logs.ts';
import { pyClient, PyWorker } from '../helpers/python.ts';

const TSQ = 'numbers.ts';
const PYQ = 'numbers.py';
let redis: RedisServer;
let app: Celeriac;
let worker: Worker;
let py: PyWorker;
const received: unknown[][] = [];

before(async () => {
  redis = await startRedis();
  app = new Celeriac('numbers', { broker: redis.url(0), backend: redis.url(1) });
  app.task('ts.numbers', function (this: TaskContext, ...args: unknown[]) {
    received.push(args);
    const [big, huge, e21, inf, nan] = args as [bigint, bigint, bigint, number, number];
    return { big: big + 1n, huge, e21, inf: -inf, nan, types: args.map((a) => typeof a) };
  }, { queue: TSQ });
  worker = new Worker(app, { logger: quietLogger(), queues: [TSQ] });
  [py] = await Promise.all([PyWorker.start(redis, [PYQ], 'py-numbers@%h'), worker.start()]);
});

after(async () => {
  await worker?.stop();
  await py?.stop();
  await app?.close();
  await redis?.dispose();
});

test('Python → TS → Python: 2^53+1, 2^64+1, 10^21, inf and nan arrive exact and come back exact', async () => {
  const out = await pyClient(redis, [
    `r = app.send_task('ts.numbers', args=[2**53 + 1, 2**64 + 1, 10**21, float('inf'), float('nan')], queue=${JSON.stringify(TSQ)})`,
    'v = r.get(timeout=20)',
    "print(json.dumps({'big': str(v['big']), 'huge': str(v['huge']), 'e21': repr(v['e21']), 'e21_is_int': isinstance(v['e21'], int),",
    "  'inf': repr(v['inf']), 'nan': repr(v['nan']), 'types': v['types']}))",
  ].join('\n'));
  assert.deepEqual(out, {
    big: '9007199254740994', huge: '18446744073709551617', e21: '1000000000000000000000', e21_is_int: true,
    inf: '-inf', nan: 'nan', types: ['bigint', 'bigint', 'bigint', 'number', 'number'],
  });
  const [args] = received;
  assert.equal(args[0], 9007199254740993n);
  assert.equal(args[1], 18446744073709551617n);
  assert.equal(args[3], Infinity);
  assert.ok(Number.isNaN(args[4]));
});

test('TS → Python: BigInt and Infinity sent from TypeScript reach a Python task exactly; its result reads back', async () => {
  const res = await app.sendTask('celery_peer.echo', [2n ** 64n + 1n, 12345678901234567890n, -Infinity, 1.5, 7], {}, { queue: PYQ });
  const v = await res.get({ timeout: 20_000 }) as { args: unknown[] };
  assert.deepEqual(v.args, [2n ** 64n + 1n, 12345678901234567890n, -Infinity, 1.5, 7]);
  const state = await res.state();
  assert.equal(state, 'SUCCESS');
});
