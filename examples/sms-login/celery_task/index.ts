// `celeriac -A examples/sms-login/celery_task worker -B` lands here (the web app then runs with SMS_LOGIN_WORKER=0
// and SMS_LOGIN_BEAT=0): the app, whose `include` loads the tasks.
export { app } from './celery.ts';
