/**
 * What the web app is given (system.ts builds it): the shared resources, the settings, and the two celeriac-facing
 * operations as plain functions, so the routes never import celeriac.
 */
import type { Runtime } from '../runtime.ts';
import type { Settings } from '../settings.ts';

export interface SmsTaskStatus {
  id: string;
  state: string;
  result?: unknown;
  error?: { type: string; message: string };
}

export interface WebDeps {
  rt: Runtime;
  settings: Settings;
  /** Queue send_sms(phone, code); resolves with the task id once the broker has the message. */
  queueSms(phone: string, code: string): Promise<string>;
  smsStatus(id: string): Promise<SmsTaskStatus>;
  /** What the health endpoint reports about the queue. */
  brokerUrl(): Promise<string>;
  logError(message: string): void;
}
