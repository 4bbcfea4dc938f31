// The controller's API over HTTPS: the provider registers scaling groups and servers with the
// admin token; each member reports its own load with the token in its seed (the paper's
// XML-RPC service for appliances, as JSON); the status page is read by anyone who can reach it
// (it holds no secret). Every request is checked before the store is touched: a wrong or
// missing token is 401, a token of one member cannot report for another (403), a body over
// the limit is 413, malformed JSON or a bad field is 400 with what to fix.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../contract.ts';
import type { WireGroupView } from '../drivers/controller-api.ts';
import { sha256Hex } from './group-pass.ts';
import { GROUP_NAME, RequestError, parseGroupRegistration, parseLoadReport, parseServerRegistration } from './registration.ts';
import type { ControllerStore, GroupRecord } from './store.ts';

/** Bodies above this are refused unread: a group's files are the largest thing sent. */
export const MAX_BODY_BYTES = 256 * 1024;

export interface ApiOptions {
  store: ControllerStore;
  log: Logger;
  /** SHA-256 (hex) of the admin token: the token itself stays in its file. */
  adminTokenSha256: string;
  tls: { certPem: string; keyPem: string };
  host: string;
  port: number;
  now: () => number;
  /** The status page and its timeline, rendered on request. */
  pages: { status(): Promise<string>; timeline(span: TimelineSpan): Promise<string> };
}

/** What GET /v1/groups/NAME answers (and PUT, after storing): the provider's WireGroupView. */
export type GroupView = GroupRecord & Pick<WireGroupView, 'desired' | 'members'>;

export async function groupView(store: ControllerStore, g: GroupRecord): Promise<GroupView> {
  const members = await store.members(g.name);
  return { ...g, desired: members.length, members: members.map((m) => ({ name: m.name, server: m.server, index: m.index })) };
}

const sameHash = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

function bearer(req: IncomingMessage): string | null {
  const m = /^Bearer ([A-Za-z0-9._~+/=-]{8,256})$/.exec(req.headers.authorization ?? '');
  return m ? m[1]! : null;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) throw new RequestError(413, `the body is over ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new RequestError(413, `the body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new RequestError(400, `the body is not JSON (${(err as Error).message})`);
  }
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? JSON.stringify(body) + '\n' : String(body);
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(text);
}

export class ControllerApi {
  private constructor(private readonly server: Server, readonly url: string) {}

  static async start(o: ApiOptions): Promise<ControllerApi> {
    const server = createServer({ cert: o.tls.certPem, key: o.tls.keyPem, minVersion: 'TLSv1.2' }, (req, res) => {
      route(o, req, res).catch((err: unknown) => {
        if (err instanceof RequestError) {
          // The rest of a refused body is not read: close the connection rather than drain it.
          if (err.status === 413) res.setHeader('connection', 'close');
          send(res, err.status, { error: err.message });
          return;
        }
        o.log.error(`API ${req.method} ${req.url} failed: ${(err as Error).message}`);
        if (!res.headersSent) send(res, 500, { error: 'the controller failed to answer; see its log' });
      });
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const host = o.host.includes(':') ? `[${o.host}]` : o.host;
    return new ControllerApi(server, `https://${host}:${port}`);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/** A span of the timeline: from and to as epoch ms; either may be left to the page's default. */
export interface TimelineSpan { from?: number; to?: number }

/** ?from=&to= as ISO 8601 times or epoch milliseconds (a run's own minutes, e.g. the demo's). */
function timelineSpan(query: URLSearchParams): TimelineSpan {
  const time = (name: 'from' | 'to'): number | undefined => {
    const text = query.get(name);
    if (text === null) return undefined;
    const at = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
    if (!Number.isFinite(at)) throw new RequestError(400, `${name}=${JSON.stringify(text)} is not a time: give ISO 8601 (2026-11-30T20:50:00Z) or epoch milliseconds`);
    return at;
  };
  const span = { from: time('from'), to: time('to') };
  if (span.from !== undefined && span.to !== undefined && span.from >= span.to) throw new RequestError(400, 'from must be before to');
  return span;
}

async function route(o: ApiOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://controller');
  const parts = url.pathname.split('/').filter(Boolean).map((p) => decodeURIComponent(p));
  const method = req.method ?? 'GET';

  if (method === 'GET' && url.pathname === '/healthz') return send(res, 200, { ok: true });
  if (method === 'GET' && (url.pathname === '/' || url.pathname === '/status')) return send(res, 200, await o.pages.status(), 'text/html');
  if (method === 'GET' && url.pathname === '/status/timeline.svg') return send(res, 200, await o.pages.timeline(timelineSpan(url.searchParams)), 'image/svg+xml');

  // A member reports for itself only: its token's hash must be the one stored for that name.
  if (parts[0] === 'v1' && parts[1] === 'members' && parts.length === 4 && parts[3] === 'load') {
    if (method !== 'POST') throw new RequestError(405, 'use POST');
    const token = bearer(req);
    if (!token) throw new RequestError(401, 'a member reports with its token: Authorization: Bearer TOKEN (the token is in its seed, /etc/storm/controller.json)');
    const member = await o.store.member(parts[2]!);
    const hash = sha256Hex(token);
    if (!member || member.tokenSha256 === null || !sameHash(member.tokenSha256, hash)) {
      throw new RequestError(member ? 403 : 401, member ? `this token is not member ${parts[2]}'s` : 'unknown member or token');
    }
    const metrics = parseLoadReport(await readJson(req));
    const at = o.now();
    await o.store.recordSamples(Object.entries(metrics).map(([metric, value]) => ({ at, subject: member.name, metric, value })));
    return send(res, 202, { recorded: Object.keys(metrics) });
  }

  if (parts[0] !== 'v1') throw new RequestError(404, 'no such page: try /status or /v1/groups/NAME');
  const token = bearer(req);
  if (!token || !sameHash(sha256Hex(token), o.adminTokenSha256)) throw new RequestError(401, 'this needs the admin token: Authorization: Bearer TOKEN (storm controller init wrote it)');

  if (parts[1] === 'groups' && parts.length === 3) {
    const name = parts[2]!;
    if (!GROUP_NAME.test(name)) throw new RequestError(400, `"${name}" is not a group name: lower case letters, digits and dashes, starting with a letter, at most 41 characters`);
    if (method === 'GET') {
      const g = await o.store.group(name);
      if (!g) throw new RequestError(404, `no group ${name}`);
      return send(res, 200, await groupView(o.store, g));
    }
    if (method === 'PUT') {
      const reg = parseGroupRegistration(await readJson(req));
      const prior = await o.store.group(name);
      await o.store.putGroup({ name, ...reg, deleting: false, lastScaleOutAt: prior?.lastScaleOutAt ?? null, lastScaleInAt: prior?.lastScaleInAt ?? null });
      o.log.info(`group ${name} ${prior ? 'updated' : 'registered'}`, { min: reg.policy.min, max: reg.policy.max });
      return send(res, prior ? 200 : 201, await groupView(o.store, (await o.store.group(name))!));
    }
    if (method === 'DELETE') {
      const g = await o.store.group(name);
      if (!g) throw new RequestError(404, `no group ${name}`);
      await o.store.markDeleting(name);
      o.log.info(`group ${name} marked for removal: its members are drained by the next pass`);
      return send(res, 202, await groupView(o.store, { ...g, deleting: true }));
    }
    throw new RequestError(405, 'use GET, PUT or DELETE');
  }
  if (parts[1] === 'groups' && parts.length === 2 && method === 'GET') {
    return send(res, 200, await Promise.all((await o.store.groups()).map((g) => groupView(o.store, g))));
  }
  if (parts[1] === 'servers' && parts.length === 3) {
    const id = parts[2]!;
    if (method === 'PUT') {
      const reg = parseServerRegistration(id, await readJson(req));
      await o.store.putServer({ id, ...reg });
      return send(res, 200, { id, name: reg.name, uri: reg.uri, bmc: reg.bmc !== null, managed: reg.managed });
    }
    if (method === 'DELETE') {
      await o.store.deleteServer(id);
      return send(res, 204, '', 'text/plain');
    }
    throw new RequestError(405, 'use PUT or DELETE');
  }
  if (parts[1] === 'decisions' && parts.length === 2 && method === 'GET') {
    const limit = Math.min(1000, Math.max(1, Number(url.searchParams.get('limit') ?? 100) || 100));
    return send(res, 200, await o.store.decisions({ subject: url.searchParams.get('subject') ?? undefined, limit }));
  }
  throw new RequestError(404, `no such API: ${method} ${url.pathname}`);
}
