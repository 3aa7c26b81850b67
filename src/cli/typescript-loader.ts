/**
 * TypeScript for `-A`: an app or task module written in TypeScript (.ts, .mts, .cts) is compiled as it loads, by
 * tsx, registered the first time such a file is met. A JavaScript app never loads it, so a compiled deployment
 * pays nothing for TypeScript at run time.
 *
 * tsx is an optional peer dependency: a project that runs .ts apps installs it (`npm install -D tsx`); without it,
 * a .ts app fails with E_TS_LOADER naming that command. A process already started with a TypeScript loader
 * (`node --import tsx`) keeps its own.
 */
import { CeleriacError, ErrorCode } from '../common/errors.ts';

const TS_FILE = /\.[cm]?ts$/;

let ready: Promise<void> | null = null;

export function isTypeScriptFile(file: string): boolean {
  return TS_FILE.test(file) && !file.endsWith('.d.ts');
}

function loaderAlreadyActive(): boolean {
  const flags = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  return /(^|[\s=/])tsx(\/|\s|$)/.test(flags) || /--(experimental-)?(strip-types|transform-types)/.test(flags);
}

/** Make `import()` of TypeScript files work in this process (once). */
export function enableTypeScript(): Promise<void> {
  ready ??= (async () => {
    if (loaderAlreadyActive()) return;
    let api: { register(): unknown };
    try {
      // a computed specifier: the package's own types and code never depend on tsx
      const spec = 'tsx/esm/api';
      api = (await import(spec)) as typeof api;
    } catch (err) {
      ready = null;
      throw new CeleriacError(ErrorCode.TypeScriptLoader,
        'the app is TypeScript, and running it needs tsx, which is not installed here. Fix: npm install -D tsx, ' +
        'or compile the app to JavaScript and pass the .js file to -A', { cause: err });
    }
    api.register();
  })();
  return ready;
}
