/** Task name -> queue and priority: explicit options win, then `taskRoutes` (exact name, then globs), then the task's own. */
import type { Route } from './config.ts';

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

export class Router {
  private readonly exact = new Map<string, Route>();
  private readonly globs: Array<[RegExp, Route]> = [];

  constructor(routes: Record<string, Route>) {
    for (const [pattern, route] of Object.entries(routes)) {
      if (/[*?]/.test(pattern)) this.globs.push([globToRegExp(pattern), route]);
      else this.exact.set(pattern, route);
    }
  }

  route(taskName: string): Route | undefined {
    const hit = this.exact.get(taskName);
    if (hit) return hit;
    for (const [re, route] of this.globs) if (re.test(taskName)) return route;
    return undefined;
  }
}
