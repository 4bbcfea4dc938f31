// Logs go to stderr as hclog-style JSON lines: go-plugin parses them, so TF_LOG=INFO shows
// storm's info lines at the right level. stdout belongs to the handshake line alone.
export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';

import type { Logger } from '../contract.ts';

export type { Logger };

/** go-plugin parses @timestamp with a fixed microsecond layout; anything else demotes the line to DEBUG. */
function timestamp(): string {
  return new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function write(level: Level, message: string, fields?: Record<string, unknown>): void {
  const line = JSON.stringify({ '@level': level, '@message': message, '@module': 'storm', '@timestamp': timestamp(), ...fields });
  process.stderr.write(line + '\n');
}

export const log: Logger = {
  debug: (m, f) => write('debug', m, f),
  info: (m, f) => write('info', m, f),
  warn: (m, f) => write('warn', m, f),
  error: (m, f) => write('error', m, f),
};
