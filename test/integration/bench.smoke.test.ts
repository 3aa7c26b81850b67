// `npm run bench` must keep working: a tiny celeriac-only run prints the table and writes its JSON and SVG.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { exec, run, ROOT } from '../helpers/processes.ts';

test('the benchmark runs end to end and writes its results', async () => {
  const { code, out } = await exec(run(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--tasks', '600', '--runs', '1',
    '--seconds', '1', '--rate', '100', '--only', 'celeriac']), 120_000);
  assert.equal(code, 0, out.slice(-2000));
  assert.match(out, /drain \(1 worker process\) \(tasks\/s, higher is better\) \| [\d,]+/);
  const json = JSON.parse(readFileSync(`${ROOT}bench/results/latest.json`, 'utf8'));
  assert.ok(json.results['drain (1 worker process)'].celeriac.median > 0);
  assert.ok(existsSync(`${ROOT}bench/results/latest.svg`));
});
