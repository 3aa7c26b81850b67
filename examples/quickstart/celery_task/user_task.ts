// The quick start's user_task (user_task.py in a Python Celery project): "send" an SMS code. A real provider would
// be called here; the demo prints it.
import { app } from './celery.ts';

export const sendSms = app.task('celery_task.user_task.send_sms', async (phone: string, code: string) => {
  if (!/^1\d{10}$/.test(phone) && !/^\d{6,15}$/.test(phone)) throw new Error(`not a phone number: ${phone}`);
  await new Promise((r) => setTimeout(r, 300));
  console.log(`[sms] to ${phone}: your code is ${code}`);
  return { phone, sent: true };
});
