/**
 * The Lua scripts of the Redis broker and backend live beside their code as `lua/<name>.lua` (the build copies
 * them into dist/). One loader for both, so a missing script is one coded error instead of a bare ENOENT.
 */
import { readFileSync } from 'node:fs';
import { CeleriacError, ErrorCode } from '../../common/errors.ts';

/** The text of `lua/<name>.lua` next to the module whose `import.meta.url` is `base`. */
export function loadLua(base: string, name: string): string {
  const file = new URL(`./lua/${name}.lua`, base);
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CeleriacError(ErrorCode.ModuleLoad,
      `celeriac's Redis script ${name}.lua is missing at ${file.pathname} (a broken install? ${(err as Error).message})`,
      { cause: err });
  }
}
