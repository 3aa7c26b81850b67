/**
 * Retry delays as Celery computes them (`get_exponential_backoff_interval`): factor·2^retries seconds, capped,
 * and with full jitter a uniform draw in [0, delay] so that a burst of failures does not retry in lockstep.
 */

export interface BackoffOptions {
  factor: number;
  retries: number;
  maximum: number;
  jitter: boolean;
  random?: () => number;
}

export function backoffSeconds(o: BackoffOptions): number {
  const raw = Math.min(o.maximum, o.factor * 2 ** o.retries);
  const delay = o.jitter ? (o.random ?? Math.random)() * raw : raw;
  return Math.max(0, delay);
}
