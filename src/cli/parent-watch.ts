/**
 * Stop with the npm process that started us. `npx celeriac …` and `npm run <script>` start the command through
 * `sh -c`; on SIGTERM npm forwards the signal to that shell only, and a shell that does not exec its last command
 * (Debian's dash) dies without passing it on, which would leave the worker running with nobody to stop it. So,
 * only when npm started us, the loss of our parent process counts as the SIGTERM it stands for.
 * Direct starts (`node_modules/.bin/celeriac`, systemd, a container's entry point) are left alone: their parent
 * may go away on purpose (a shell that started a worker in the background).
 */
const POLL_MS = 200;

export function startedByNpm(env: NodeJS.ProcessEnv = process.env): boolean {
  return typeof env.npm_lifecycle_event === 'string' && env.npm_lifecycle_event !== '';
}

/** Call `onGone` once when the parent process goes away; returns a function that stops watching. */
export function onParentGone(onGone: () => void): () => void {
  if (!startedByNpm()) return () => {};
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone();
  }, POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
