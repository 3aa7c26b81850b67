// `celeriac -A examples/quickstart …` lands here: the app lives in celery_task/, laid out like a Celery
// project's package (celery.py plus one module per group of tasks).
export { app } from './celery_task/celery.ts';
