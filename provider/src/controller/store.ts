// What the controller remembers between passes and across restarts. The hosts say what exists
// (domains, power); the store holds what they cannot: each group's policy and shape, when it
// last scaled, the decisions taken and why, the load and power samples behind them, and each
// server's power-on history (its learned boot lead time). One interface, so the embedded
// SQLite store and a shared PostgreSQL one pass the same contract tests.
import type { Bmc } from '../drivers/ipmi.ts';
import type { PowerPolicy } from '../policy/power.ts';
import type { ScalingPolicy } from '../policy/scaling.ts';

/** What each member of a group is made of (as a storm_instance would be). */
export interface MemberShape {
  /** The deployments (`dep-NAME@SERVER_ID`) members may be placed on. */
  deployments: string[];
  memoryMib: number;
  vcpus: number;
  network: string;
  /** Template variables; `${member}` and `${index}` are the member's own. */
  variables: Record<string, string>;
  files: { path: string; content: string; permissions: string }[];
  /** What members provide (the appliance's `provides`): SRV records, and MX for mail. */
  services: string[];
  /** Where new members go: the least-loaded server (the paper's) or the fullest that fits. */
  placement: 'spread' | 'consolidate';
}

export interface GroupRecord {
  name: string;
  policy: ScalingPolicy;
  shape: MemberShape;
  /** The DNS name that resolves to every running member. */
  dnsName: string | null;
  /**
   * What it scales on: 'cpu' (the members' CPU from the hypervisor, the paper's way) or the name
   * of a metric its members report themselves (e.g. 'queue'); the policy's thresholds are then
   * in that metric's units.
   */
  metric: string;
  /** Its servers' power, or null when storm leaves their power alone. */
  power: PowerPolicy | null;
  /** Terraform destroyed it: passes remove every member, then the record. */
  deleting: boolean;
  lastScaleOutAt: number | null;
  lastScaleInAt: number | null;
}

/** A server the controller may power on and off (registered by storm_appliance_server). */
export interface ServerRecord {
  /** NAME@URI, as the deployments name it. */
  id: string;
  name: string;
  uri: string;
  bmc: Bmc | null;
  /** The BMC's power sensor, when it is not found by name. */
  powerSensor: string | null;
  /** Terraform handed its power to the controller (power = "controller"); else its Watts are only read. */
  managed: boolean;
}

export interface MemberRecord {
  group: string;
  name: string;
  /** The server (NAME@URI) it was placed on. */
  server: string;
  /** Its index in the group (the `${index}` of its templates); freed indexes are reused. */
  index: number;
  createdAt: number;
  /** SHA-256 (hex) of the token in its seed, with which it reports its own load; null if none. */
  tokenSha256: string | null;
}

export interface DecisionRecord {
  at: number;
  /** 'scale' (a group) or 'power' (a server). */
  kind: 'scale' | 'power';
  /** The group or server it is about. */
  subject: string;
  /** e.g. 'out', 'in', 'on', 'off', 'none'. */
  action: string;
  reason: string;
}

export interface SampleRecord {
  at: number;
  /** An instance, a group or a server. */
  subject: string;
  /** e.g. 'cpu' (0..1), 'watts', 'queue'. */
  metric: string;
  value: number;
}

export interface PowerOnRecord {
  server: string;
  at: number;
  /** Seconds until libvirt answered; null while it boots (or if it never did). */
  bootSeconds: number | null;
}

export interface ControllerStore {
  putGroup(group: GroupRecord): Promise<void>;
  group(name: string): Promise<GroupRecord | null>;
  groups(): Promise<GroupRecord[]>;
  /** Removes the group and its members' records. */
  deleteGroup(name: string): Promise<void>;
  markScaled(group: string, direction: 'out' | 'in', at: number): Promise<void>;
  /** Marks the group for draining; re-registering it (putGroup) clears the mark. */
  markDeleting(name: string): Promise<void>;

  putMember(member: MemberRecord): Promise<void>;
  members(group: string): Promise<MemberRecord[]>;
  removeMember(group: string, name: string): Promise<void>;
  /** A member by name, whatever its group (names are unique: GROUP-INDEX). */
  member(name: string): Promise<MemberRecord | null>;

  putServer(server: ServerRecord): Promise<void>;
  servers(): Promise<ServerRecord[]>;
  deleteServer(id: string): Promise<void>;

  recordDecision(decision: DecisionRecord): Promise<void>;
  /** The newest first. */
  decisions(options?: { subject?: string; limit?: number }): Promise<DecisionRecord[]>;

  recordSamples(samples: readonly SampleRecord[]): Promise<void>;
  /** Oldest first, within [from, to]. */
  samples(subject: string, metric: string, from: number, to: number): Promise<SampleRecord[]>;
  /** Per subject, the sum and count of a metric's samples within [from, to] (accounting). */
  sumSamples(metric: string, from: number, to: number): Promise<{ subject: string; total: number; count: number }[]>;
  /** Drops samples older than `before` (the store keeps a bounded history). */
  pruneSamples(before: number): Promise<number>;

  recordPowerOn(record: PowerOnRecord): Promise<void>;
  /** Boot times of the server's completed power-ons, oldest first. */
  bootHistory(server: string): Promise<number[]>;
  /** The server's newest power-on, finished or not. */
  lastPowerOn(server: string): Promise<PowerOnRecord | null>;

  /**
   * Leadership among controllers sharing the store: true when `holder` leads after the call
   * (it took the lead, or renewed it). A leader that stops renewing loses it after `ttlMs`.
   */
  lead(holder: string, ttlMs: number, now: number): Promise<boolean>;

  close(): Promise<void>;
}
