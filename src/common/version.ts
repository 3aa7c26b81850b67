/** The package's version, read once from its package.json (two levels up from both src/common and dist/common). */
import { readFileSync } from 'node:fs';

export const VERSION: string =
  (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
