// What one session with the hosts remembers: a provider process (one Terraform command's walk)
// or one pass of the controller's loop. Observations are made once per session, concurrent
// work on one object is done once, and placement decisions are taken one at a time. Nothing
// here is a module global, so a long-running process starts each pass with a fresh session
// and never acts on what it saw an hour ago.
import { randomUUID } from 'node:crypto';
import { createPool, readHost, removePool, type HostObservation, type PoolRemoval } from '../drivers/libvirt.ts';
import { deleteVolume, replaceRecord } from '../drivers/volumes.ts';
import { POOL } from './names.ts';

/** A placement made in this session whose domain the hosts may not show yet. */
export interface PendingPlacement {
  server: string;
  memoryMib: number;
  vcpus: number;
}

const key = (uri: string, name: string) => `${uri}\u0000${name}`;

export class HostSession {
  /** Names this session in what it leaves on hosts (placement reservations). */
  readonly id = randomUUID();
  private readonly observations = new Map<string, Promise<HostObservation>>();
  private readonly pools = new Map<string, Promise<void>>();
  private readonly poolRemovals = new Map<string, Promise<PoolRemoval>>();
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private readonly recordWrites = new Map<string, Promise<void>>();
  /** What this session last wrote to each record: writing the same again changes nothing. */
  private readonly lastWritten = new Map<string, string>();
  /** Instances placed in this session, by name, until their domains exist. */
  readonly pendingPlacements = new Map<string, PendingPlacement>();
  private placementTurn: Promise<unknown> = Promise.resolve();

  /** The host's capacity and pools, read once per session (a plan of many resources on one host asks once). */
  observe(uri: string): Promise<HostObservation> {
    let pending = this.observations.get(uri);
    if (!pending) {
      pending = readHost(uri);
      this.observations.set(uri, pending);
      pending.catch(() => this.observations.delete(uri));
    }
    return pending;
  }

  /** After a change to the host (power, pools), the next observe reads it again. */
  forget(uri: string): void {
    this.observations.delete(uri);
  }

  /** Makes sure storm's pool exists and runs; many servers may name one host at once. */
  ensurePool(uri: string, path: string): Promise<void> {
    const k = key(uri, POOL);
    this.poolRemovals.delete(k);
    let pending = this.pools.get(k);
    if (!pending) {
      pending = (async () => {
        const existing = (await this.observe(uri)).pools.get(POOL);
        if (existing?.active) return;
        this.forget(uri);
        await createPool(uri, POOL, path, existing !== undefined);
      })();
      this.pools.set(k, pending);
      pending.catch(() => this.pools.delete(k));
    }
    return pending;
  }

  /**
   * Removes storm's pool when it holds nothing but storm's own `records`. A removal is
   * remembered for the session (many servers may name one host: one removal answers them
   * all) until the pool is ensured again; the records went with the pool, so what this
   * session wrote to them is forgotten too.
   */
  removePoolIfEmpty(uri: string, records: readonly string[]): Promise<PoolRemoval> {
    const k = key(uri, POOL);
    this.pools.delete(k);
    this.forget(uri);
    let pending = this.poolRemovals.get(k);
    if (!pending) {
      pending = removePool(uri, POOL, records);
      this.poolRemovals.set(k, pending);
      // Only a removal is remembered: a pool kept because it held volumes may be empty by the
      // time another server on this host is destroyed later in the walk.
      pending.then(
        (r) => {
          if (!r.removed) this.poolRemovals.delete(k);
          else for (const written of this.lastWritten.keys()) if (written.startsWith(key(uri, ''))) this.lastWritten.delete(written);
        },
        () => this.poolRemovals.delete(k),
      );
    }
    return pending;
  }

  /**
   * Runs `work` once for concurrent callers with the same key (e.g. appliances sharing a base
   * wait for one upload); `joined` tells a caller it did not start the work itself.
   */
  async once<T>(workKey: string, work: () => Promise<T>): Promise<{ value: T; joined: boolean }> {
    const pending = this.inFlight.get(workKey) as Promise<T> | undefined;
    if (pending) return { value: await pending, joined: true };
    const started = work();
    this.inFlight.set(workKey, started);
    try {
      return { value: await started, joined: false };
    } finally {
      this.inFlight.delete(workKey);
    }
  }

  /**
   * Writes a record. Writes of one record run one after another (a record is replaced by
   * delete + upload, and resources applied in parallel may write the same one).
   */
  writeRecord(uri: string, name: string, value: unknown): Promise<void> {
    const k = key(uri, name);
    const text = JSON.stringify(value);
    const next = (this.recordWrites.get(k) ?? Promise.resolve())
      .catch(() => {})
      .then(async () => {
        if (this.lastWritten.get(k) === text) return;
        this.lastWritten.delete(k);
        await replaceRecord(uri, name, text);
        this.lastWritten.set(k, text);
      });
    this.recordWrites.set(k, next);
    void next
      .finally(() => {
        if (this.recordWrites.get(k) === next) this.recordWrites.delete(k);
      })
      .catch(() => {});
    return next;
  }

  async deleteRecord(uri: string, name: string): Promise<boolean> {
    this.lastWritten.delete(key(uri, name));
    return deleteVolume(uri, name);
  }

  /**
   * Placement decisions run one at a time: Terraform creates instances in parallel, and each
   * decision must see those made before it (recorded in `pendingPlacements`).
   */
  placeOneAtATime<T>(decide: () => Promise<T>): Promise<T> {
    const result = this.placementTurn.then(decide);
    this.placementTurn = result.catch(() => {});
    return result;
  }
}
