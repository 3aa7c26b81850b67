// The quick start's order_task (order_task.py in a Python Celery project): an async task that adds two numbers.
import { app } from './celery.ts';

export const add = app.task('celery_task.order_task.add', async (a: number, b: number) => {
  await new Promise((r) => setTimeout(r, 500)); // stands in for real work, so the state can be seen changing
  return a + b;
});
