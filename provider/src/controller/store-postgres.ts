// The controller's store in PostgreSQL: one database several controllers share, so that one of
// them leads (the lease below) and the others stand by with the same history. The tables and
// their meaning are the SQLite store's; every write is one statement, so a controller killed at
// any point leaves whole records (PostgreSQL rolls back what a dead client did not finish).
import { Pool, type PoolClient, type QueryResult } from 'pg';
import { redactUrl } from './redact.ts';
import type { ControllerStore, DecisionRecord, GroupRecord, MemberRecord, PowerOnRecord, SampleRecord, ServerRecord } from './store.ts';

/** Bumped when the tables change; a database of another version is refused, not misread. */
const SCHEMA_VERSION = 1;

/** The tables this store owns (storm_schema aside); found without storm_schema, they are someone else's. */
const TABLES = ['groups', 'members', 'servers', 'leadership', 'decisions', 'samples', 'power_ons'];

const SCHEMA = `
create table if not exists storm_schema (
  id integer primary key check (id = 1),
  version integer not null
);
create table if not exists groups (
  name text primary key,
  policy jsonb not null,
  shape jsonb not null,
  dns_name text,
  metric text not null default 'cpu',
  power jsonb,
  deleting boolean not null default false,
  last_scale_out_at bigint,
  last_scale_in_at bigint
);
create table if not exists members (
  group_name text not null references groups(name) on delete cascade,
  name text not null,
  server text not null,
  idx integer not null,
  created_at bigint not null,
  token_sha256 text,
  primary key (group_name, name)
);
create unique index if not exists members_by_name on members(name);
create table if not exists servers (
  id text primary key,
  name text not null,
  uri text not null,
  bmc jsonb,
  power_sensor text,
  managed boolean not null default false
);
create table if not exists leadership (
  id integer primary key check (id = 1),
  holder text not null,
  expires_at bigint not null
);
create table if not exists decisions (
  id bigint generated always as identity primary key,
  at bigint not null,
  kind text not null,
  subject text not null,
  action text not null,
  reason text not null
);
create index if not exists decisions_subject on decisions(subject, id);
create table if not exists samples (
  subject text not null,
  metric text not null,
  at bigint not null,
  value double precision not null
);
create index if not exists samples_by_subject on samples(subject, metric, at);
-- Pruning deletes by time alone: without this it scans every sample (292 ms a minute at 3 M rows).
create index if not exists samples_by_time on samples(at);
create table if not exists power_ons (
  server text not null,
  at bigint not null,
  boot_seconds double precision,
  primary key (server, at)
);
`;

/** Any number: two controllers opening one empty database at once create the tables once. */
const SCHEMA_LOCK = 0x73746f726d; // 'storm'

/** A connection that does not come up in this time is reported, not waited on for TCP's minutes. */
const CONNECT_TIMEOUT_MS = 10_000;

type Row = Record<string, unknown>;
type Param = string | number | boolean | null | readonly string[] | readonly number[];

/** The store cannot be reached or opened; the message is for the operator as it stands. */
export class PostgresStoreError extends Error {
  override name = 'PostgresStoreError';
}

const codeOf = (err: unknown): string | undefined =>
  err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;

/**
 * What went wrong talking to the server and what to look at, for failures the operator fixes
 * (server down, wrong URL, login, privileges); null for anything else (a bug, not a setting).
 */
function diagnose(err: unknown): { what: string; check: string } | null {
  const code = codeOf(err);
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'ERR_INVALID_URL':
      return { what: 'the URL does not parse', check: 'its form, postgres://USER:PASSWORD@HOST:PORT/DATABASE, with special characters in the password percent-encoded' };
    case 'ECONNREFUSED':
      return { what: 'nothing accepts connections there', check: 'that PostgreSQL runs and listens on that host and port (listen_addresses and port in postgresql.conf)' };
    case 'ENOENT':
      return { what: 'there is no PostgreSQL socket there', check: 'that PostgreSQL runs and the socket directory in the URL' };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { what: 'its host name does not resolve', check: "the URL's host name and DNS" };
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { what: 'the host does not answer', check: 'that the host is up and reachable, and that no firewall drops the port' };
    case 'ECONNRESET':
    case 'EPIPE':
      return { what: 'the server cut the connection', check: "that PostgreSQL is running (its log says why it closed the connection)" };
    case '28P01':
    case '28000':
      return { what: 'the server refused the login', check: "the user and password in the URL (or ~/.pgpass) and the server's pg_hba.conf" };
    case '3D000':
      return { what: 'the database does not exist', check: "the URL's database name, or create it (createdb NAME)" };
    case '42501':
      return { what: 'the user lacks a privilege the store needs', check: 'that the user may create and use tables in its schema (GRANT CREATE, USAGE ON SCHEMA ... TO ...)' };
    case '53300':
      return { what: 'the server has no connection left', check: "the server's max_connections and who holds its connections" };
    case '57P01':
    case '57P02':
    case '57P03':
      return { what: 'the server is shutting down or starting up', check: 'the state of PostgreSQL (its log)' };
  }
  if (code?.startsWith('08')) return { what: 'the connection failed', check: 'that PostgreSQL runs and is reachable (its log)' };
  if (message.includes('connection timeout') || message.includes('timeout expired')) {
    return { what: `no answer within ${CONNECT_TIMEOUT_MS / 1000} s`, check: 'that the host is up and reachable, and that no firewall drops the port' };
  }
  if (message.startsWith('Connection terminated')) return { what: 'the connection was lost', check: 'that PostgreSQL is running (its log)' };
  // pg's own wording when the server asks for a password the URL does not give.
  if (message.startsWith('SASL:')) return { what: 'the server wants a password', check: 'the password in the URL (or ~/.pgpass)' };
  return null;
}

function explained(url: string, err: unknown): PostgresStoreError | null {
  const trouble = diagnose(err);
  if (!trouble) return null;
  const detail = err instanceof Error && err.message ? ` (${err.message})` : '';
  return new PostgresStoreError(`PostgreSQL store ${redactUrl(url)}: ${trouble.what}${detail}. Check ${trouble.check}.`, { cause: err });
}

export async function openPostgresStore(url: string): Promise<ControllerStore> {
  const pool = new Pool({ connectionString: url, max: 4, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, application_name: 'storm controller' });
  // An idle connection the server closed (a restart, a timeout) is reported here; the pool drops
  // it and the next query opens another. Unheard, the event would end the controller.
  pool.on('error', () => {});
  try {
    const client = await pool.connect();
    try {
      await client.query('begin');
      await client.query('select pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
      await checkVersion(client, url);
      await client.query(SCHEMA);
      await client.query('insert into storm_schema (id, version) values (1, $1) on conflict (id) do nothing', [SCHEMA_VERSION]);
      await client.query('commit');
    } catch (err) {
      await client.query('rollback').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  } catch (err) {
    await pool.end().catch(() => {});
    if (err instanceof PostgresStoreError) throw err;
    throw explained(url, err) ?? new PostgresStoreError(`PostgreSQL store ${redactUrl(url)}: cannot open it: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return new PostgresStore(pool, url);
}

async function checkVersion(client: PoolClient, url: string): Promise<void> {
  const { rows: [versioned] } = await client.query<Row>("select to_regclass('storm_schema') is not null as versioned");
  if (versioned?.versioned === true) {
    const { rows: [row] } = await client.query<Row>('select version from storm_schema where id = 1');
    const version = row ? Number(row.version) : 'unknown';
    if (version === SCHEMA_VERSION) return;
    throw new PostgresStoreError(`PostgreSQL store ${redactUrl(url)} is a storm controller store of version ${version}, this controller reads version ${SCHEMA_VERSION}: drop its tables or give the controller another database (the hosts keep the truth; the controller adopts their members again)`);
  }
  // Names as plain as 'groups' may be another application's: never write into those.
  const { rows } = await client.query<Row>('select name from unnest($1::text[]) as name where to_regclass(name) is not null', [TABLES]);
  if (rows.length) {
    throw new PostgresStoreError(`PostgreSQL store ${redactUrl(url)} already has tables named ${rows.map((r) => String(r.name)).join(', ')} but is not a storm controller store (no storm_schema): give the controller a database (or schema) of its own`);
  }
}

const nullableNumber = (v: unknown): number | null => (v === null ? null : Number(v));
const nullableString = (v: unknown): string | null => (v === null ? null : String(v));
const json = (v: unknown): string | null => (v === null ? null : JSON.stringify(v));

// jsonb comes back parsed; bigint comes back as a string (it may exceed 2^53, ours do not).
const groupOf = (r: Row): GroupRecord => ({
  name: String(r.name),
  policy: r.policy as GroupRecord['policy'],
  shape: r.shape as GroupRecord['shape'],
  dnsName: nullableString(r.dns_name),
  metric: String(r.metric),
  power: r.power as GroupRecord['power'],
  deleting: r.deleting === true,
  lastScaleOutAt: nullableNumber(r.last_scale_out_at),
  lastScaleInAt: nullableNumber(r.last_scale_in_at),
});

const memberOf = (r: Row): MemberRecord => ({
  group: String(r.group_name), name: String(r.name), server: String(r.server), index: Number(r.idx), createdAt: Number(r.created_at),
  tokenSha256: nullableString(r.token_sha256),
});

class PostgresStore implements ControllerStore {
  constructor(private readonly pool: Pool, private readonly url: string) {}

  private async query(sql: string, params: readonly Param[] = []): Promise<QueryResult<Row>> {
    try {
      return await this.pool.query<Row>(sql, [...params]);
    } catch (err) {
      throw explained(this.url, err) ?? err;
    }
  }

  private async all(sql: string, params: readonly Param[] = []): Promise<Row[]> {
    return (await this.query(sql, params)).rows;
  }

  private async run(sql: string, params: readonly Param[] = []): Promise<number> {
    return (await this.query(sql, params)).rowCount ?? 0;
  }

  async putGroup(g: GroupRecord): Promise<void> {
    // The policy and shape come from Terraform; when it last scaled is the controller's own.
    await this.run(
      `insert into groups (name, policy, shape, dns_name, metric, power, deleting, last_scale_out_at, last_scale_in_at) values ($1, $2, $3, $4, $5, $6, false, $7, $8)
       on conflict (name) do update set policy = excluded.policy, shape = excluded.shape, dns_name = excluded.dns_name,
         metric = excluded.metric, power = excluded.power, deleting = false`,
      [g.name, json(g.policy), json(g.shape), g.dnsName, g.metric, json(g.power), g.lastScaleOutAt, g.lastScaleInAt],
    );
  }

  async group(name: string): Promise<GroupRecord | null> {
    const [r] = await this.all('select * from groups where name = $1', [name]);
    return r ? groupOf(r) : null;
  }

  async groups(): Promise<GroupRecord[]> {
    return (await this.all('select * from groups order by name')).map(groupOf);
  }

  async deleteGroup(name: string): Promise<void> {
    await this.run('delete from groups where name = $1', [name]);
  }

  async markScaled(group: string, direction: 'out' | 'in', at: number): Promise<void> {
    await this.run(`update groups set ${direction === 'out' ? 'last_scale_out_at' : 'last_scale_in_at'} = $1 where name = $2`, [at, group]);
  }

  async markDeleting(name: string): Promise<void> {
    await this.run('update groups set deleting = true where name = $1', [name]);
  }

  async putMember(m: MemberRecord): Promise<void> {
    await this.run(
      `insert into members (group_name, name, server, idx, created_at, token_sha256) values ($1, $2, $3, $4, $5, $6)
       on conflict (group_name, name) do update set server = excluded.server, idx = excluded.idx, created_at = excluded.created_at, token_sha256 = excluded.token_sha256`,
      [m.group, m.name, m.server, m.index, m.createdAt, m.tokenSha256],
    );
  }

  async members(group: string): Promise<MemberRecord[]> {
    return (await this.all('select * from members where group_name = $1 order by idx', [group])).map(memberOf);
  }

  async member(name: string): Promise<MemberRecord | null> {
    const [r] = await this.all('select * from members where name = $1', [name]);
    return r ? memberOf(r) : null;
  }

  async removeMember(group: string, name: string): Promise<void> {
    await this.run('delete from members where group_name = $1 and name = $2', [group, name]);
  }

  async putServer(s: ServerRecord): Promise<void> {
    await this.run(
      `insert into servers (id, name, uri, bmc, power_sensor, managed) values ($1, $2, $3, $4, $5, $6)
       on conflict (id) do update set name = excluded.name, uri = excluded.uri, bmc = excluded.bmc, power_sensor = excluded.power_sensor, managed = excluded.managed`,
      [s.id, s.name, s.uri, json(s.bmc), s.powerSensor, s.managed],
    );
  }

  async servers(): Promise<ServerRecord[]> {
    return (await this.all('select * from servers order by id')).map((r) => ({
      id: String(r.id), name: String(r.name), uri: String(r.uri),
      bmc: r.bmc as ServerRecord['bmc'],
      powerSensor: nullableString(r.power_sensor),
      managed: r.managed === true,
    }));
  }

  async deleteServer(id: string): Promise<void> {
    await this.run('delete from servers where id = $1', [id]);
  }

  async recordDecision(d: DecisionRecord): Promise<void> {
    await this.run('insert into decisions (at, kind, subject, action, reason) values ($1, $2, $3, $4, $5)', [d.at, d.kind, d.subject, d.action, d.reason]);
  }

  async decisions(options: { subject?: string; limit?: number } = {}): Promise<DecisionRecord[]> {
    const limit = options.limit ?? 100;
    const rows = options.subject === undefined
      ? await this.all('select * from decisions order by id desc limit $1', [limit])
      : await this.all('select * from decisions where subject = $1 order by id desc limit $2', [options.subject, limit]);
    return rows.map((r) => ({ at: Number(r.at), kind: String(r.kind) as DecisionRecord['kind'], subject: String(r.subject), action: String(r.action), reason: String(r.reason) }));
  }

  async recordSamples(samples: readonly SampleRecord[]): Promise<void> {
    if (!samples.length) return;
    // The round as one statement (one array per column), hence one transaction: kept whole or
    // not at all, in one round trip whatever its size.
    await this.run(
      'insert into samples (subject, metric, at, value) select * from unnest($1::text[], $2::text[], $3::bigint[], $4::double precision[])',
      [samples.map((s) => s.subject), samples.map((s) => s.metric), samples.map((s) => s.at), samples.map((s) => s.value)],
    );
  }

  async samples(subject: string, metric: string, from: number, to: number): Promise<SampleRecord[]> {
    return (await this.all('select * from samples where subject = $1 and metric = $2 and at between $3 and $4 order by at', [subject, metric, from, to])).map((r) => ({
      subject: String(r.subject), metric: String(r.metric), at: Number(r.at), value: Number(r.value),
    }));
  }

  async sumSamples(metric: string, from: number, to: number): Promise<{ subject: string; total: number; count: number }[]> {
    return (await this.all('select subject, sum(value) as total, count(*) as n from samples where metric = $1 and at between $2 and $3 group by subject order by subject', [metric, from, to]))
      .map((r) => ({ subject: String(r.subject), total: Number(r.total), count: Number(r.n) }));
  }

  async pruneSamples(before: number): Promise<number> {
    return this.run('delete from samples where at < $1', [before]);
  }

  async recordPowerOn(p: PowerOnRecord): Promise<void> {
    await this.run(
      'insert into power_ons (server, at, boot_seconds) values ($1, $2, $3) on conflict (server, at) do update set boot_seconds = excluded.boot_seconds',
      [p.server, p.at, p.bootSeconds],
    );
  }

  async bootHistory(server: string): Promise<number[]> {
    return (await this.all('select boot_seconds from power_ons where server = $1 and boot_seconds is not null order by at', [server])).map((r) => Number(r.boot_seconds));
  }

  async lastPowerOn(server: string): Promise<PowerOnRecord | null> {
    const [r] = await this.all('select * from power_ons where server = $1 order by at desc limit 1', [server]);
    return r ? { server: String(r.server), at: Number(r.at), bootSeconds: nullableNumber(r.boot_seconds) } : null;
  }

  async lead(holder: string, ttlMs: number, now: number): Promise<boolean> {
    // One statement: take the lease if it is free, expired or already ours. Two controllers
    // racing for it queue on the row's lock, and the second re-checks the condition against the
    // first's write, so only one wins; a row comes back only to the one that holds the lease.
    // The times are the callers' clocks: controllers sharing a store keep them in step (NTP),
    // far closer than the lease's length.
    const taken = await this.run(
      `insert into leadership (id, holder, expires_at) values (1, $1, $2)
       on conflict (id) do update set holder = excluded.holder, expires_at = excluded.expires_at
       where leadership.holder = excluded.holder or leadership.expires_at < $3
       returning holder`,
      [holder, now + ttlMs, now],
    );
    return taken === 1;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
