/**
 * Access to the captured Celery fixtures in `test/fixtures/celery/`: what real Python Celery wrote to Redis, kept in
 * the repository (see test/fixtures/celery/README.md for what each file holds and how to capture them again).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const FIXTURES_DIR = new URL('../fixtures/celery/', import.meta.url);

/** Every top-level `*.json` fixture file name, sorted. */
export function fixtureNames(): string[] {
  return readdirSync(fileURLToPath(FIXTURES_DIR)).filter((n) => n.endsWith('.json')).sort();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export function loadFixture(name: string): Json {
  return JSON.parse(readFileSync(new URL(name, FIXTURES_DIR), 'utf8'));
}
