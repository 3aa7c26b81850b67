/**
 * The app's tasks (what a Python Celery project would split into user_task.py and home_task.py):
 * - send_sms(phone, code): hand the code to the SMS provider. Transient provider failures (5xx, timeouts, refused
 *   connections) retry by themselves with exponential backoff and jitter (1 s, 2 s, 4 s… by default, at most 60 s
 *   apart) and end as FAILURE (SmsSendError) when retries run out; a definitive refusal (4xx) fails at once.
 *   The result names the provider's message id, never the code.
 * - update_banner(): re-read the banners from the database into the cache; beat sends it every minute.
 */
import type { TaskContext } from 'celeriac';
import { app } from './celery.ts';
import { settings } from '../settings.ts';
import { runtime } from '../runtime.ts';
import { codeText, SmsSendError } from '../sms/provider.ts';

const s = settings();

export const sendSms = app.task('sms_login.tasks.send_sms', async function (this: TaskContext, phone: string, code: string) {
  const { sms } = runtime();
  const { messageId } = await sms.send(phone, codeText(code, s.codeTtlSeconds), this.signal);
  return { phone, provider: sms.name, messageId };
}, {
  autoretryFor: (err) => err instanceof SmsSendError && err.retryable,
  retryBackoff: s.smsRetryBackoff,
  retryBackoffMax: 60,
  maxRetries: s.smsMaxRetries,
});

export const updateBanner = app.task('sms_login.tasks.update_banner', async () => {
  const list = await runtime().banners.refresh();
  return { count: list.banners.length, refreshedAt: list.refreshedAt };
});
