// SMTP client and load generator for the mail appliance (scripts/build-mail-layer.sh): the boot
// test's client, and the load the demo puts on a mail group, as the paper's load-generating blades
// did. Plain SMTP (RFC 5321) without PIPELINING: OpenSMTPD 6.8 does not offer it, and one command
// at a time is what a burst of separate clients looks like to the server anyway.
//
// Pure core first (reply parsing, message text, how a burst is split, its report), then the I/O:
// SmtpSession over one TCP connection; sendBurst, which runs a bounded burst over a few
// sessions and never retries; SteadyLoad, a load that lasts until stopped over whatever addresses
// a name gives, trying a failed session again while its address is given. Every wait is bounded
// (timeoutMs per reply).
import { connect, type Socket } from 'node:net';

// ---- pure core -------------------------------------------------------------------------------

export interface SmtpReply {
  code: number;
  /** The text of each line, without the code and separator. */
  lines: string[];
}

/** The text of a reply as the server sent it, e.g. "250 2.0.0 Ok". */
export const replyText = (r: SmtpReply): string => r.lines.map((l, i) => `${r.code}${i < r.lines.length - 1 ? '-' : ' '}${l}`).join('\n');

/**
 * Turns the server's byte stream into replies: `250-...` lines continue a reply, `250 ...` ends
 * it (RFC 5321 4.2.1). Feed it chunks as they arrive; it returns the replies each chunk completed.
 */
export class ReplyReader {
  private buffer = '';
  private pending: string[] = [];

  push(chunk: string): SmtpReply[] {
    this.buffer += chunk;
    const done: SmtpReply[] = [];
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      const m = /^(\d{3})([ -]?)(.*)$/.exec(line);
      if (!m) throw new SmtpProtocolError(`not an SMTP reply line: ${JSON.stringify(line.slice(0, 120))}`);
      this.pending.push(m[3]!);
      if (m[2] !== '-') {
        done.push({ code: Number(m[1]), lines: this.pending });
        this.pending = [];
      }
    }
    return done;
  }
}

export class SmtpProtocolError extends Error {
  override name = 'SmtpProtocolError';
}

/** The server answered a command with another code than the one the dialogue needs. */
export class SmtpReplyError extends Error {
  override name = 'SmtpReplyError';
  constructor(readonly command: string, readonly expected: number, readonly reply: SmtpReply) {
    super(`${command}: expected ${expected}, got ${replyText(reply)}`);
  }
}

/** DATA's transparency (RFC 5321 4.5.2): a line that starts with "." gets another one. */
export function dotStuff(text: string): string {
  return text.replace(/(^|\r\n)\./g, '$1..');
}

export interface MessageSpec {
  from: string;
  to: string;
  /** Size of the whole message (headers and body, CRLF line ends) in bytes, at least its headers. */
  sizeBytes: number;
  /** Makes each message of a burst distinct (subject, Message-ID, body). */
  seq: number;
  /** The Date header; fixed by callers that want the same text twice. */
  date?: Date;
}

/**
 * An RFC 5322 message of exactly `sizeBytes` bytes: headers, then 78-byte body lines of
 * printable ASCII (no line starts with "."), the last one shortened to fit.
 */
export function messageText(m: MessageSpec): string {
  const headers = [
    `From: <${m.from}>`,
    `To: <${m.to}>`,
    `Subject: storm load ${m.seq}`,
    `Date: ${(m.date ?? new Date()).toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <load-${m.seq}@storm.invalid>`,
    '',
    '',
  ].join('\r\n');
  let room = m.sizeBytes - headers.length;
  if (room < 0) throw new RangeError(`sizeBytes ${m.sizeBytes} is smaller than the headers (${headers.length} bytes)`);
  const body: string[] = [];
  const line = `message ${m.seq} `.padEnd(76, 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(3)).slice(0, 76);
  while (room >= 78) {
    body.push(line + '\r\n');
    room -= 78;
  }
  // the remainder: a shorter line (CRLF needs 2 bytes; a lone byte of room becomes a space)
  if (room >= 2) body.push(line.slice(0, room - 2) + '\r\n');
  else if (room === 1) body.push(' ');
  return headers + body.join('');
}

/** How many messages each of `connections` sessions sends: as even as possible, the first ones take the rest. */
export function splitBurst(messages: number, connections: number): number[] {
  if (!Number.isInteger(messages) || messages < 0) throw new RangeError(`messages must be a whole number ≥ 0, got ${messages}`);
  if (!Number.isInteger(connections) || connections < 1) throw new RangeError(`connections must be a whole number ≥ 1, got ${connections}`);
  const n = Math.min(connections, Math.max(messages, 1));
  return Array.from({ length: n }, (_, i) => Math.floor(messages / n) + (i < messages % n ? 1 : 0));
}

/** One message's outcome: when its MAIL FROM went out, when its DATA was answered, and how. */
export interface MessageResult {
  startMs: number;
  endMs: number;
  /** The reply to the end of DATA (250 when accepted), or null when the session failed before. */
  code: number | null;
  error?: string;
}

export interface BurstReport {
  messages: number;
  accepted: number;
  failed: number;
  bytes: number;
  seconds: number;
  messagesPerSecond: number;
  /** Accepted bytes per second, in MiB. */
  mibPerSecond: number;
  /** Per-message latency (MAIL FROM to the 250 after DATA), ms. */
  latencyMs: { p50: number; p95: number; max: number };
  /** Replies to DATA by code, and "error" for messages whose session failed. */
  outcomes: Record<string, number>;
  /** The first few errors, for the log. */
  errors: string[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** The burst's figures from its messages' outcomes; `wallMs` is from the first connect to the last reply. */
export function summarizeBurst(results: readonly MessageResult[], sizeBytes: number, wallMs: number): BurstReport {
  const accepted = results.filter((r) => r.code === 250);
  const latencies = accepted.map((r) => r.endMs - r.startMs).sort((a, b) => a - b);
  const outcomes: Record<string, number> = {};
  for (const r of results) {
    const k = r.code === null ? 'error' : String(r.code);
    outcomes[k] = (outcomes[k] ?? 0) + 1;
  }
  const seconds = wallMs / 1000;
  const bytes = accepted.length * sizeBytes;
  return {
    messages: results.length,
    accepted: accepted.length,
    failed: results.length - accepted.length,
    bytes,
    seconds,
    messagesPerSecond: seconds > 0 ? accepted.length / seconds : 0,
    mibPerSecond: seconds > 0 ? bytes / 1024 / 1024 / seconds : 0,
    latencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), max: latencies.at(-1) ?? 0 },
    outcomes,
    errors: results.filter((r) => r.error).slice(0, 5).map((r) => r.error!),
  };
}

// ---- I/O -------------------------------------------------------------------------------------

export interface SessionOptions {
  host: string;
  port?: number;
  /** Bound on the connect and on every reply, ms. */
  timeoutMs?: number;
}

/** One SMTP session: send a command, get its reply; replies that the caller does not expect throw SmtpReplyError. */
export class SmtpSession {
  private readonly reader = new ReplyReader();
  private readonly queue: SmtpReply[] = [];
  private waiter: ((r: SmtpReply | Error) => void) | null = null;
  private failure: Error | null = null;
  private greetingReply: SmtpReply | null = null;

  private constructor(private readonly socket: Socket, private readonly timeoutMs: number) {
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => this.onData(d));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new SmtpProtocolError('connection closed by the server')));
  }

  /** Connects and reads the greeting, which must be 220. */
  static async open(o: SessionOptions): Promise<SmtpSession> {
    const s = new SmtpSession(connect({ host: o.host, port: o.port ?? 25 }), o.timeoutMs ?? 60_000);
    try {
      const greeting = await s.replyTo('greeting');
      if (greeting.code !== 220) throw new SmtpReplyError('greeting', 220, greeting);
      s.greetingReply = greeting;
    } catch (e) {
      s.close();
      throw e;
    }
    return s;
  }

  /** The server's 220 greeting. */
  get greeting(): SmtpReply {
    return this.greetingReply!;
  }

  private onData(chunk: string): void {
    let replies: SmtpReply[];
    try {
      replies = this.reader.push(chunk);
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    for (const r of replies) {
      const w = this.waiter;
      if (w) {
        this.waiter = null;
        w(r);
      } else {
        this.queue.push(r);
      }
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    const w = this.waiter;
    this.waiter = null;
    w?.(e);
  }

  /** The next reply; a timeout or a lost connection names what was waiting for it. */
  private async replyTo(what: string): Promise<SmtpReply> {
    try {
      return await this.next();
    } catch (e) {
      if (e instanceof SmtpProtocolError) throw new SmtpProtocolError(`${what}: ${e.message}`);
      throw e;
    }
  }

  private next(): Promise<SmtpReply> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new SmtpProtocolError(`no reply within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiter = (r) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
    });
  }

  private write(text: string): void {
    this.socket.write(text, 'latin1');
  }

  /** Sends one command line; with `expect`, a reply with another code throws SmtpReplyError. */
  async command(line: string, expect?: number): Promise<SmtpReply> {
    this.write(`${line}\r\n`);
    const r = await this.replyTo(line);
    if (expect !== undefined && r.code !== expect) throw new SmtpReplyError(line, expect, r);
    return r;
  }

  /** DATA, the message (dot-stuffed here), the final dot; returns the reply to the final dot. */
  async data(message: string, expect = 250): Promise<SmtpReply> {
    await this.command('DATA', 354);
    const text = dotStuff(message);
    this.write(text.endsWith('\r\n') ? `${text}.\r\n` : `${text}\r\n.\r\n`);
    const r = await this.replyTo('end of DATA');
    if (r.code !== expect) throw new SmtpReplyError('end of DATA', expect, r);
    return r;
  }

  /** One message: MAIL FROM, RCPT TO, DATA; each reply must be 250 (354 for DATA). */
  async send(from: string, to: string, message: string): Promise<SmtpReply> {
    await this.command(`MAIL FROM:<${from}>`, 250);
    await this.command(`RCPT TO:<${to}>`, 250);
    return this.data(message);
  }

  /** QUIT (221 expected), then the socket is closed whatever the reply. */
  async quit(): Promise<SmtpReply | null> {
    try {
      return this.failure ? null : await this.command('QUIT');
    } finally {
      this.close();
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface BurstOptions extends SessionOptions {
  messages: number;
  sizeBytes: number;
  connections: number;
  from: string;
  to: string;
  /** EHLO name; default "loadgen.storm.invalid". */
  helo?: string;
}

/**
 * Sends `messages` messages of `sizeBytes` over `connections` concurrent sessions (each one
 * EHLO, then its share of messages back to back, then QUIT) and reports the figures. A session
 * that fails counts its remaining messages as failed; the others go on.
 */
export async function sendBurst(o: BurstOptions): Promise<BurstReport> {
  const shares = splitBurst(o.messages, o.connections);
  const results: MessageResult[] = [];
  const t0 = performance.now();
  let seq = 0;
  await Promise.all(shares.map(async (share) => {
    let sent = 0;
    let session: SmtpSession | null = null;
    try {
      session = await SmtpSession.open(o);
      await session.command(`EHLO ${o.helo ?? 'loadgen.storm.invalid'}`, 250);
      for (; sent < share; sent++) {
        const text = messageText({ from: o.from, to: o.to, sizeBytes: o.sizeBytes, seq: ++seq });
        const startMs = performance.now();
        const r = await session.send(o.from, o.to, text);
        results.push({ startMs, endMs: performance.now(), code: r.code });
      }
      await session.quit();
    } catch (e) {
      const now = performance.now();
      const code = e instanceof SmtpReplyError ? e.reply.code : null;
      results.push({ startMs: now, endMs: now, code, error: (e as Error).message });
      for (sent++; sent < share; sent++) results.push({ startMs: now, endMs: now, code: null, error: 'session failed earlier' });
      session?.close();
    }
  }));
  return summarizeBurst(results, o.sizeBytes, performance.now() - t0);
}

export interface SteadyLoadOptions {
  /** Where the load goes now: called every `refreshMs` (a group's DNS name, resolved). */
  addresses: () => Promise<string[]>;
  /** Sessions kept open per address, each sending back to back. */
  perAddress: number;
  sizeBytes: number;
  from: string;
  to: string;
  port?: number;
  timeoutMs?: number;
  /** How often the addresses are asked again, ms; default 3000. */
  refreshMs?: number;
  /** Messages per session before it reconnects (sessions then follow the addresses); default 20. */
  messagesPerSession?: number;
}

/**
 * A load that lasts until stopped, spread over whatever addresses a DNS name gives now: the
 * paper's load-generating clients against a scaled mail service. Addresses that appear get their
 * sessions; sessions to one that disappears (a member scaled in) end with their session. A
 * failed session counts and is tried again a second later, while its address is still given.
 */
export class SteadyLoad {
  /** Accepted messages by address. */
  readonly accepted = new Map<string, number>();
  /** Sessions that failed after connecting, or could not connect for another reason than a refusal. */
  failed = 0;
  /** Connections refused: a member is in the name before its MTA listens (it is still starting). */
  refused = 0;
  lastError: string | null = null;
  private running = false;
  private current = new Set<string>();
  private readonly workers = new Map<string, Promise<void>[]>();
  private refresher: Promise<void> | null = null;
  private seq = 0;

  constructor(private readonly o: SteadyLoadOptions) {}

  get total(): number {
    let n = 0;
    for (const v of this.accepted.values()) n += v;
    return n;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.refresher = this.refresh();
  }

  /** Ends every session after its current message; resolves when all have. */
  async stop(): Promise<void> {
    this.running = false;
    await this.refresher;
    await Promise.all([...this.workers.values()].flat());
    this.workers.clear();
  }

  private async refresh(): Promise<void> {
    while (this.running) {
      const given = await this.o.addresses().catch((e: Error) => {
        this.lastError = `resolving: ${e.message}`;
        return [...this.current];
      });
      this.current = new Set(given);
      for (const address of this.current) {
        if (this.workers.has(address)) continue;
        this.workers.set(address, Array.from({ length: this.o.perAddress }, () => this.worker(address)));
      }
      const until = Date.now() + (this.o.refreshMs ?? 3000);
      while (this.running && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    }
  }

  private async worker(address: string): Promise<void> {
    while (this.running && this.current.has(address)) {
      let session: SmtpSession | null = null;
      try {
        session = await SmtpSession.open({ host: address, port: this.o.port, timeoutMs: this.o.timeoutMs ?? 30_000 });
        await session.command('EHLO loadgen.storm.invalid', 250);
        for (let i = 0; i < (this.o.messagesPerSession ?? 20) && this.running && this.current.has(address); i++) {
          await session.send(this.o.from, this.o.to, messageText({ from: this.o.from, to: this.o.to, sizeBytes: this.o.sizeBytes, seq: ++this.seq }));
          this.accepted.set(address, (this.accepted.get(address) ?? 0) + 1);
        }
        await session.quit();
      } catch (e) {
        session?.close();
        if ((e as NodeJS.ErrnoException).code === 'ECONNREFUSED') this.refused++;
        else {
          this.failed++;
          this.lastError = `${address}: ${(e as Error).message}`;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    // Gone from the name: let a later refresh start sessions again should it come back.
    if (!this.running || !this.current.has(address)) this.forget(address);
  }

  private forget(address: string): void {
    if (this.running) this.workers.delete(address);
  }
}
