import { createLogger, type Logger } from 'celeriac';

/** Collects log lines instead of printing them; set CELERIAC_TEST_LOGS=1 to see them. */
export function quietLogger(lines: string[] = []): Logger & { lines: string[] } {
  const logger = createLogger({
    level: 'info',
    write: (l) => {
      lines.push(l);
      if (process.env.CELERIAC_TEST_LOGS) process.stderr.write(l + '\n');
    },
  });
  return Object.assign(logger, { lines });
}
