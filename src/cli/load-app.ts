/**
 * `-A` resolution: a file (`.ts`/`.js`, extension optional), a package directory (its `celery.ts` or `index.ts`),
 * or a dotted module name relative to the current directory; `path:attr` picks another export than `app`.
 * Task modules named in the app's `include` are loaded relative to the app module.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CeleriacError, ErrorCode } from '../common/errors.ts';
import { Celeriac } from '../app/app.ts';
import { enableTypeScript, isTypeScriptFile } from './typescript-loader.ts';

const EXTENSIONS = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'];
const PACKAGE_ENTRIES = ['celery', 'index'];

function resolveFile(base: string): string | null {
  if (existsSync(base) && statSync(base).isFile()) return base;
  if (existsSync(base) && statSync(base).isDirectory()) {
    for (const entry of PACKAGE_ENTRIES) {
      const hit = resolveFile(resolve(base, entry));
      if (hit) return hit;
    }
    return null;
  }
  const stem = base.replace(/\.(js|mjs|cjs)$/, '');
  for (const ext of EXTENSIONS) if (existsSync(stem + ext)) return stem + ext;
  return null;
}

export function resolveModule(spec: string, from: string): string | null {
  const direct = resolveFile(resolve(from, spec));
  if (direct) return direct;
  if (!spec.startsWith('.') && !spec.startsWith('/') && /^[\w.]+$/.test(spec)) {
    return resolveFile(resolve(from, spec.split('.').join('/')));
  }
  return null;
}

async function importFile(file: string, what: string): Promise<Record<string, unknown>> {
  if (isTypeScriptFile(file)) await enableTypeScript();
  try {
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new CeleriacError(ErrorCode.ModuleLoad, `cannot load ${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export interface LoadedApp {
  app: Celeriac;
  file: string;
}

export async function loadApp(spec: string, cwd = process.cwd()): Promise<LoadedApp> {
  const [path, attr = 'app'] = spec.split(/:(?=[A-Za-z_$][\w$]*$)/);
  const file = resolveModule(path, cwd);
  if (!file) {
    throw new CeleriacError(ErrorCode.ModuleLoad,
      `cannot find app module "${path}" (looked for a .ts/.js file, or a package with celery.ts or index.ts)`);
  }
  const mod = await importFile(file, 'app module');
  const app = mod[attr] ?? (attr === 'app' ? mod.default : undefined);
  if (!isApp(app)) {
    throw new CeleriacError(ErrorCode.NoApp,
      `${file} has no export "${attr}" that is a Celeriac app (export const ${attr} = new Celeriac(...))`);
  }
  return { app, file };
}

/** Duck-typed as well: an app built by another copy of the package (e.g. a linked checkout) is still an app. */
function isApp(value: unknown): value is Celeriac {
  if (value instanceof Celeriac) return true;
  const v = value as Partial<Celeriac> | null;
  return !!v && typeof v.task === 'function' && typeof v.applyTask === 'function' && v.tasks instanceof Map;
}

export async function loadIncludes(loaded: LoadedApp): Promise<void> {
  const dir = loaded.app.definedIn ? dirname(loaded.app.definedIn) : dirname(loaded.file);
  for (const spec of loaded.app.conf.include) {
    const file = resolveModule(spec, spec.startsWith('.') || spec.startsWith('/') ? dir : process.cwd()) ??
      resolveModule(spec, dir);
    if (!file) throw new CeleriacError(ErrorCode.ModuleLoad, `cannot find task module "${spec}" (from include)`);
    await importFile(file, 'task module');
  }
}
