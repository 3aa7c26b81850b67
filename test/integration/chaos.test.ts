// The short chaos run: acks-late tasks over 3 worker processes, SIGKILLs every 2 s, one Redis restart, a share of
// ETA tasks. It must end with nothing lost and nothing run early (the harness exits 1 otherwise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exec, lastJsonLine, run } from '../helpers/processes.ts';

test('short chaos run: 0 lost, 0 early, duplicates only from killed workers', async () => {
  const { code, out } = await exec(run(process.execPath, ['--import', 'tsx', 'chaos/run.ts', '--tasks', '1500',
    '--kill-every', '2', '--timeout', '90']), 150_000);
  const summary = lastJsonLine(out.split('\n').filter((l) => l.startsWith('{"sent"')).join('\n'));
  assert.equal(code, 0, out.slice(-3000));
  assert.equal(summary.sent, 1500);
  assert.equal(summary.lost, 0);
  assert.equal(summary.ranEarly, 0);
  assert.ok(summary.workerKills >= 1, 'at least one worker was killed');
  assert.equal(summary.redisRestarts, 1);
  assert.ok(summary.duplicated <= summary.duplicatesAllowed);
});
