// A test app: the tasks the integration and interop tests call. Broker and backend come from the environment.
import { Celeriac } from 'celeriac';

export const app = new Celeriac('basic', {
  broker: process.env.CELERIAC_BROKER_URL,
  backend: process.env.CELERIAC_RESULT_BACKEND,
  include: ['./tasks.ts'],
  workerMaxRecoveries: Number(process.env.TEST_MAX_RECOVERIES ?? 10),
  brokerTransportOptions: {
    leaseTimeout: Number(process.env.TEST_LEASE_TIMEOUT ?? 10),
    visibilityTimeout: Number(process.env.TEST_VISIBILITY_TIMEOUT ?? 3600),
  },
});
