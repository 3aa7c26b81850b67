#!/usr/bin/env node
/**
 * `npm start`: the SMS-login app with its worker and beat in this process; prints the URL; Ctrl-C (SIGINT) or
 * SIGTERM stops it warm (the worker finishes running tasks) and exits 0; a second signal exits at once (1).
 * Settings come from the environment (see settings.ts and README.md); PORT=0 picks a free port.
 */
import { settings, SettingsError, type Settings } from './settings.ts';

async function main(): Promise<void> {
  let s: Settings;
  try {
    s = settings();
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    console.error(`sms-login: ${err.message}`);
    process.exit(2);
  }
  // imported after the settings are checked: the task modules read them as they load
  const { startSystem } = await import('./system.ts');
  const system = await startSystem({ settings: s });
  const where = [
    s.embedWorker ? 'worker' : null,
    s.embedBeat ? 'beat' : null,
  ].filter(Boolean).join(' + ');
  console.log(`sms-login: web app${where ? ` + ${where}` : ''} running; cache ${s.cacheUrl.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')}`);
  console.log(`sms-login: demo account alice / celeriac-demo (phone 13800138000); ` +
    (s.smsProvider === 'outbox' ? 'SMS go to the page\'s phone panel (outbox)' : `SMS go to ${s.smsHttpUrl}`));
  console.log(`sms-login: listening on ${system.url}  (Ctrl-C to stop)`);

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      console.error(`sms-login: ${signal} again, exiting without waiting`);
      process.exit(1);
    }
    console.log(`sms-login: ${signal} received, shutting down`);
    system.stop().then(() => process.exit(0), (err: Error) => {
      console.error(`sms-login: shutdown failed: ${err.message}`);
      process.exit(1);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

main().catch((err: Error) => {
  console.error(`sms-login: cannot start: ${err.stack ?? err.message}`);
  process.exit(1);
});
