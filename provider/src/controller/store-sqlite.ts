// The controller's store in an embedded SQLite file (node:sqlite): nothing to install or run
// beside the controller. Writes are single statements or one transaction, so a controller
// killed at any point leaves the file consistent (SQLite's journal sees to that).
import type { DatabaseSync, SQLInputValue } from 'node:sqlite';
import type { ControllerStore, DecisionRecord, GroupRecord, MemberRecord, PowerOnRecord, SampleRecord, ServerRecord } from './store.ts';

/** Bumped when the tables change; a file of another version is refused, not misread. */
const SCHEMA_VERSION = 2;

const SCHEMA = `
create table if not exists groups (
  name text primary key,
  policy text not null,
  shape text not null,
  dns_name text,
  metric text not null default 'cpu',
  power text,
  deleting integer not null default 0,
  last_scale_out_at integer,
  last_scale_in_at integer
);
create table if not exists members (
  group_name text not null references groups(name) on delete cascade,
  name text not null,
  server text not null,
  idx integer not null,
  created_at integer not null,
  token_sha256 text,
  primary key (group_name, name)
);
create unique index if not exists members_by_name on members(name);
create table if not exists servers (
  id text primary key,
  name text not null,
  uri text not null,
  bmc text,
  power_sensor text,
  managed integer not null default 0
);
create table if not exists leadership (
  id integer primary key check (id = 1),
  holder text not null,
  expires_at integer not null
);
create table if not exists decisions (
  id integer primary key autoincrement,
  at integer not null,
  kind text not null,
  subject text not null,
  action text not null,
  reason text not null
);
create index if not exists decisions_subject on decisions(subject, id);
create table if not exists samples (
  subject text not null,
  metric text not null,
  at integer not null,
  value real not null
);
create index if not exists samples_by_subject on samples(subject, metric, at);
-- Pruning deletes by time alone: without this it scans every sample (292 ms a minute at 3 M rows).
create index if not exists samples_by_time on samples(at);
create table if not exists power_ons (
  server text not null,
  at integer not null,
  boot_seconds real,
  primary key (server, at)
);
`;

type Row = Record<string, SQLInputValue>;

/**
 * node:sqlite, without its "experimental" warning: an operator reading the controller's log
 * would take it for a fault of the controller. Only that one warning is held back.
 */
async function loadSqlite(): Promise<typeof import('node:sqlite')> {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (/SQLite is an experimental feature/.test(String(warning))) return;
    (emit as (...args: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return await import('node:sqlite');
  } finally {
    process.emitWarning = emit;
  }
}

export async function openSqliteStore(path: string): Promise<ControllerStore> {
  const { DatabaseSync } = await loadSqlite();
  const db = new DatabaseSync(path);
  db.exec('pragma journal_mode = wal; pragma foreign_keys = on; pragma busy_timeout = 5000;');
  const version = Number((db.prepare('pragma user_version').get() as Row).user_version);
  const empty = !(db.prepare("select 1 from sqlite_master where type = 'table'").get());
  if (!empty && version !== SCHEMA_VERSION) {
    db.close();
    throw new Error(`${path} is a storm controller store of version ${version}, this controller reads version ${SCHEMA_VERSION}: move it away (the hosts keep the truth; the controller adopts their members again)`);
  }
  db.exec(SCHEMA);
  db.exec(`pragma user_version = ${SCHEMA_VERSION}`);
  return new SqliteStore(db);
}

const groupOf = (r: Row): GroupRecord => ({
  name: String(r.name),
  policy: JSON.parse(String(r.policy)) as GroupRecord['policy'],
  shape: JSON.parse(String(r.shape)) as GroupRecord['shape'],
  dnsName: r.dns_name === null ? null : String(r.dns_name),
  metric: String(r.metric),
  power: r.power === null ? null : JSON.parse(String(r.power)) as GroupRecord['power'],
  deleting: Number(r.deleting) === 1,
  lastScaleOutAt: r.last_scale_out_at === null ? null : Number(r.last_scale_out_at),
  lastScaleInAt: r.last_scale_in_at === null ? null : Number(r.last_scale_in_at),
});

const memberOf = (r: Row): MemberRecord => ({
  group: String(r.group_name), name: String(r.name), server: String(r.server), index: Number(r.idx), createdAt: Number(r.created_at),
  tokenSha256: r.token_sha256 === null ? null : String(r.token_sha256),
});

class SqliteStore implements ControllerStore {
  constructor(private readonly db: DatabaseSync) {}

  private all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.db.prepare(sql).all(...params) as Row[];
  }

  private run(sql: string, ...params: SQLInputValue[]): number {
    return Number(this.db.prepare(sql).run(...params).changes);
  }

  async putGroup(g: GroupRecord): Promise<void> {
    // The policy and shape come from Terraform; when it last scaled is the controller's own.
    this.run(
      `insert into groups (name, policy, shape, dns_name, metric, power, deleting, last_scale_out_at, last_scale_in_at) values (?, ?, ?, ?, ?, ?, 0, ?, ?)
       on conflict(name) do update set policy = excluded.policy, shape = excluded.shape, dns_name = excluded.dns_name,
         metric = excluded.metric, power = excluded.power, deleting = 0`,
      g.name, JSON.stringify(g.policy), JSON.stringify(g.shape), g.dnsName, g.metric, g.power === null ? null : JSON.stringify(g.power), g.lastScaleOutAt, g.lastScaleInAt,
    );
  }

  async group(name: string): Promise<GroupRecord | null> {
    const [r] = this.all('select * from groups where name = ?', name);
    return r ? groupOf(r) : null;
  }

  async groups(): Promise<GroupRecord[]> {
    return this.all('select * from groups order by name').map(groupOf);
  }

  async deleteGroup(name: string): Promise<void> {
    this.run('delete from groups where name = ?', name);
  }

  async markScaled(group: string, direction: 'out' | 'in', at: number): Promise<void> {
    this.run(`update groups set ${direction === 'out' ? 'last_scale_out_at' : 'last_scale_in_at'} = ? where name = ?`, at, group);
  }

  async markDeleting(name: string): Promise<void> {
    this.run('update groups set deleting = 1 where name = ?', name);
  }

  async putMember(m: MemberRecord): Promise<void> {
    this.run(
      `insert into members (group_name, name, server, idx, created_at, token_sha256) values (?, ?, ?, ?, ?, ?)
       on conflict(group_name, name) do update set server = excluded.server, idx = excluded.idx, created_at = excluded.created_at, token_sha256 = excluded.token_sha256`,
      m.group, m.name, m.server, m.index, m.createdAt, m.tokenSha256,
    );
  }

  async members(group: string): Promise<MemberRecord[]> {
    return this.all('select * from members where group_name = ? order by idx', group).map(memberOf);
  }

  async member(name: string): Promise<MemberRecord | null> {
    const [r] = this.all('select * from members where name = ?', name);
    return r ? memberOf(r) : null;
  }

  async putServer(s: ServerRecord): Promise<void> {
    this.run(
      `insert into servers (id, name, uri, bmc, power_sensor, managed) values (?, ?, ?, ?, ?, ?)
       on conflict(id) do update set name = excluded.name, uri = excluded.uri, bmc = excluded.bmc, power_sensor = excluded.power_sensor, managed = excluded.managed`,
      s.id, s.name, s.uri, s.bmc === null ? null : JSON.stringify(s.bmc), s.powerSensor, s.managed ? 1 : 0,
    );
  }

  async servers(): Promise<ServerRecord[]> {
    return this.all('select * from servers order by id').map((r) => ({
      id: String(r.id), name: String(r.name), uri: String(r.uri),
      bmc: r.bmc === null ? null : JSON.parse(String(r.bmc)) as ServerRecord['bmc'],
      powerSensor: r.power_sensor === null ? null : String(r.power_sensor),
      managed: Number(r.managed) === 1,
    }));
  }

  async deleteServer(id: string): Promise<void> {
    this.run('delete from servers where id = ?', id);
  }

  async removeMember(group: string, name: string): Promise<void> {
    this.run('delete from members where group_name = ? and name = ?', group, name);
  }

  async recordDecision(d: DecisionRecord): Promise<void> {
    this.run('insert into decisions (at, kind, subject, action, reason) values (?, ?, ?, ?, ?)', d.at, d.kind, d.subject, d.action, d.reason);
  }

  async decisions(options: { subject?: string; limit?: number } = {}): Promise<DecisionRecord[]> {
    const limit = options.limit ?? 100;
    const rows = options.subject === undefined
      ? this.all('select * from decisions order by id desc limit ?', limit)
      : this.all('select * from decisions where subject = ? order by id desc limit ?', options.subject, limit);
    return rows.map((r) => ({ at: Number(r.at), kind: String(r.kind) as DecisionRecord['kind'], subject: String(r.subject), action: String(r.action), reason: String(r.reason) }));
  }

  async recordSamples(samples: readonly SampleRecord[]): Promise<void> {
    if (!samples.length) return;
    // One transaction per round: a round of samples is kept whole or not at all.
    const insert = this.db.prepare('insert into samples (subject, metric, at, value) values (?, ?, ?, ?)');
    this.db.exec('begin');
    try {
      for (const s of samples) insert.run(s.subject, s.metric, s.at, s.value);
      this.db.exec('commit');
    } catch (err) {
      this.db.exec('rollback');
      throw err;
    }
  }

  async samples(subject: string, metric: string, from: number, to: number): Promise<SampleRecord[]> {
    return this.all('select * from samples where subject = ? and metric = ? and at between ? and ? order by at', subject, metric, from, to).map((r) => ({
      subject: String(r.subject), metric: String(r.metric), at: Number(r.at), value: Number(r.value),
    }));
  }

  async sumSamples(metric: string, from: number, to: number): Promise<{ subject: string; total: number; count: number }[]> {
    return this.all('select subject, sum(value) as total, count(*) as n from samples where metric = ? and at between ? and ? group by subject order by subject', metric, from, to)
      .map((r) => ({ subject: String(r.subject), total: Number(r.total), count: Number(r.n) }));
  }

  async pruneSamples(before: number): Promise<number> {
    return this.run('delete from samples where at < ?', before);
  }

  async recordPowerOn(p: PowerOnRecord): Promise<void> {
    this.run(
      'insert into power_ons (server, at, boot_seconds) values (?, ?, ?) on conflict(server, at) do update set boot_seconds = excluded.boot_seconds',
      p.server, p.at, p.bootSeconds,
    );
  }

  async bootHistory(server: string): Promise<number[]> {
    return this.all('select boot_seconds from power_ons where server = ? and boot_seconds is not null order by at', server).map((r) => Number(r.boot_seconds));
  }

  async lastPowerOn(server: string): Promise<PowerOnRecord | null> {
    const [r] = this.all('select * from power_ons where server = ? order by at desc limit 1', server);
    return r ? { server: String(r.server), at: Number(r.at), bootSeconds: r.boot_seconds === null ? null : Number(r.boot_seconds) } : null;
  }

  async lead(holder: string, ttlMs: number, now: number): Promise<boolean> {
    // One statement: take the lease if it is free, expired or already ours (SQLite serializes
    // writers, so two controllers on one file cannot both win).
    this.run(
      `insert into leadership (id, holder, expires_at) values (1, ?, ?)
       on conflict(id) do update set holder = excluded.holder, expires_at = excluded.expires_at
       where leadership.holder = excluded.holder or leadership.expires_at < ?`,
      holder, now + ttlMs, now,
    );
    const [r] = this.all('select holder from leadership where id = 1');
    return r?.holder === holder;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
