/**
 * Access to the captured Celery fixtures in `shared/protocol/fixtures/`. The shared folder sits next to the repo
 * (here /work/main and /work/shared; in CI the clone and shared/ are siblings too), so the path is relative to this file.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const FIXTURES_DIR = new URL('../../../shared/protocol/fixtures/', import.meta.url);

/** Every top-level `*.json` fixture file name, sorted. */
export function fixtureNames(): string[] {
  return readdirSync(fileURLToPath(FIXTURES_DIR)).filter((n) => n.endsWith('.json')).sort();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export function loadFixture(name: string): Json {
  return JSON.parse(readFileSync(new URL(name, FIXTURES_DIR), 'utf8'));
}
