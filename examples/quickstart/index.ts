// `celeriac -A examples/quickstart …` lands here: the app lives in the notes' package layout, celery_task/.
export { app } from './celery_task/celery.ts';
