// What the provider sends the controller for a scaling group and for a server, and the checks
// the controller makes of it before anything is stored. The API is reachable by anything on the
// network, so the controller checks every field itself, whatever the provider already checked.
import type { WireGroup } from '../drivers/controller-api.ts';
import type { Bmc } from '../drivers/ipmi.ts';
import type { PowerPolicy } from '../policy/power.ts';
import { DEFAULT_SCALING, type ScalingPolicy } from '../policy/scaling.ts';
import type { GroupRecord, MemberShape, ServerRecord } from './store.ts';

/** A group as Terraform declares it: everything but what the controller owns (its history). */
export type GroupRegistration = Pick<GroupRecord, 'policy' | 'shape' | 'dnsName' | 'metric' | 'power'>;

// The provider's wire type and the controller's must stay one format: each is assignable to the other.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
export const WIRE_FORMAT_MATCHES: Same<GroupRegistration, WireGroup> = true;

/** A server as Terraform declares it (storm_appliance_server with `ipmi`). */
export type ServerRegistration = Omit<ServerRecord, 'id'>;

/** A request the controller refuses: the status and what to fix. */
export class RequestError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const bad = (message: string) => new RequestError(400, message);

export const GROUP_NAME = /^[a-z][a-z0-9-]{0,40}$/;
export const METRIC_NAME = /^[a-z][a-z0-9_]{0,31}$/;
const DNS_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

type Json = Record<string, unknown>;

function object(v: unknown, where: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${where} must be an object`);
  return v as Json;
}

function num(o: Json, key: string, where: string, min: number, max: number, integer = false): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw bad(`${where}.${key} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
  return v;
}

function str(o: Json, key: string, where: string, max = 1024): string {
  const v = o[key];
  if (typeof v !== 'string' || v.length > max) throw bad(`${where}.${key} must be a string of at most ${max} characters`);
  return v;
}

function stringMap(v: unknown, where: string): Record<string, string> {
  const o = object(v ?? {}, where);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(o)) {
    if (typeof x !== 'string' || x.length > 4096) throw bad(`${where}.${k} must be a string of at most 4096 characters`);
    out[k] = x;
  }
  return out;
}

function scalingPolicy(v: unknown): ScalingPolicy {
  const o = object(v, 'policy');
  const p: ScalingPolicy = {
    min: num(o, 'min', 'policy', 0, 1000, true),
    max: num(o, 'max', 'policy', 0, 1000, true),
    guestCpuHigh: num(o, 'guestCpuHigh', 'policy', 0, 1e9),
    guestCpuLow: num(o, 'guestCpuLow', 'policy', 0, 1e9),
    windowSeconds: num(o, 'windowSeconds', 'policy', 0, 86_400),
    step: num(o, 'step', 'policy', 1, 100, true),
    cooldownOutSeconds: num(o, 'cooldownOutSeconds', 'policy', 0, 86_400),
    cooldownInSeconds: num(o, 'cooldownInSeconds', 'policy', 0, 86_400),
    // Newer settings: a provider from before them sends none, and the defaults apply.
    ...(o['scaleOutTarget'] === undefined ? {} : { scaleOutTarget: num(o, 'scaleOutTarget', 'policy', 0, 1) }),
    // Proportional scale-in is off for a group from a provider that does not know it: what it ran before.
    scaleInTarget: o['scaleInTarget'] === undefined ? 0 : num(o, 'scaleInTarget', 'policy', 0, 1),
    ...(o['saturatedGrowth'] === undefined ? {} : { saturatedGrowth: num(o, 'saturatedGrowth', 'policy', 0, 10) }),
    ...(o['saturatedServerCpu'] === undefined ? {} : { saturatedServerCpu: num(o, 'saturatedServerCpu', 'policy', 0.01, 1) }),
  };
  if (p.min > p.max) throw bad(`policy.min (${p.min}) is above policy.max (${p.max})`);
  if (p.guestCpuLow >= p.guestCpuHigh) throw bad(`policy.guestCpuLow (${p.guestCpuLow}) must be below policy.guestCpuHigh (${p.guestCpuHigh})`);
  const out = p.scaleOutTarget ?? DEFAULT_SCALING.scaleOutTarget!;
  if (out > 0 && p.scaleInTarget! >= out) throw bad(`policy.scaleInTarget (${p.scaleInTarget}) must be below policy.scaleOutTarget (${out}), or 0`);
  return p;
}

function powerPolicy(v: unknown): PowerPolicy | null {
  if (v === null || v === undefined) return null;
  const o = object(v, 'power');
  return {
    hostCpuHigh: num(o, 'hostCpuHigh', 'power', 0.01, 1),
    minServersOn: num(o, 'minServersOn', 'power', 0, 1000, true),
    emptyHoldSeconds: num(o, 'emptyHoldSeconds', 'power', 0, 7 * 86_400),
    maxConcurrentChanges: num(o, 'maxConcurrentChanges', 'power', 1, 100, true),
    defaultBootSeconds: num(o, 'defaultBootSeconds', 'power', 1, 3600),
  };
}

function memberShape(v: unknown): MemberShape {
  const o = object(v, 'shape');
  const deployments = o.deployments;
  if (!Array.isArray(deployments) || deployments.length === 0 || deployments.length > 64 || !deployments.every((d) => typeof d === 'string' && /^dep-[^@\s]+@[^@\s]+@\S+$/.test(d))) {
    throw bad('shape.deployments must list 1 to 64 storm_deployment ids (dep-NAME@SERVER@URI)');
  }
  const files = o.files ?? [];
  const services = o.services ?? [];
  if (!Array.isArray(services) || services.length > 32 || !services.every((x) => typeof x === 'string' && /^[a-z][a-z0-9-]{0,30}$/.test(x))) {
    throw bad('shape.services must list at most 32 service names (lower case letters, digits and dashes)');
  }
  if (!Array.isArray(files) || files.length > 64) throw bad('shape.files must be a list of at most 64 files');
  return {
    deployments: deployments as string[],
    memoryMib: num(o, 'memoryMib', 'shape', 16, 1_048_576, true),
    vcpus: num(o, 'vcpus', 'shape', 1, 256, true),
    network: str(o, 'network', 'shape', 64),
    variables: stringMap(o.variables, 'shape.variables'),
    files: files.map((f, i) => {
      const fo = object(f, `shape.files[${i}]`);
      const path = str(fo, 'path', `shape.files[${i}]`, 4096);
      if (!path.startsWith('/')) throw bad(`shape.files[${i}].path must be absolute`);
      const permissions = str(fo, 'permissions', `shape.files[${i}]`, 4);
      if (!/^0?[0-7]{3}$/.test(permissions)) throw bad(`shape.files[${i}].permissions must be octal like 0644`);
      return { path, content: str(fo, 'content', `shape.files[${i}]`, 32_768), permissions };
    }),
    services: services as string[],
    placement: placementOf(o.placement),
  };
}

function placementOf(v: unknown): 'spread' | 'consolidate' {
  if (v === undefined || v === null || v === 'spread') return 'spread';
  if (v === 'consolidate') return 'consolidate';
  throw bad('shape.placement must be "spread" (the least-loaded server) or "consolidate" (the fullest that fits)');
}

export function parseGroupRegistration(body: unknown): GroupRegistration {
  const o = object(body, 'the body');
  const dnsName = o.dnsName ?? null;
  if (dnsName !== null && (typeof dnsName !== 'string' || !DNS_NAME.test(dnsName) || dnsName.length > 253)) throw bad('dnsName must be a DNS name (lower case letters, digits, dashes and dots) or null');
  const metric = o.metric ?? 'cpu';
  if (typeof metric !== 'string' || !METRIC_NAME.test(metric)) throw bad('metric must be "cpu" or a reported metric\'s name (lower case letters, digits and _)');
  const policy = scalingPolicy(o.policy);
  if (metric === 'cpu' && policy.guestCpuHigh > 1) throw bad(`policy.guestCpuHigh (${policy.guestCpuHigh}) is a share of the vCPUs: at most 1`);
  return { policy, shape: memberShape(o.shape), dnsName: dnsName as string | null, metric, power: powerPolicy(o.power) };
}

function bmc(v: unknown): Bmc | null {
  if (v === null || v === undefined) return null;
  const o = object(v, 'bmc');
  return { address: str(o, 'address', 'bmc', 253), port: num(o, 'port', 'bmc', 1, 65_535, true), username: str(o, 'username', 'bmc', 64), password: str(o, 'password', 'bmc', 64) };
}

export function parseServerRegistration(id: string, body: unknown): ServerRegistration {
  const o = object(body, 'the body');
  const name = str(o, 'name', 'the body', 64);
  const uri = str(o, 'uri', 'the body', 1024);
  if (id !== `${name}@${uri}`) throw bad(`the server id "${id}" is not name@uri ("${name}@${uri}")`);
  const sensor = o.powerSensor ?? null;
  if (sensor !== null && (typeof sensor !== 'string' || sensor.length > 64)) throw bad('powerSensor must be a sensor name or null');
  const managed = o.managed ?? false;
  if (typeof managed !== 'boolean') throw bad('managed must be true (the controller may switch its power) or false (only its Watts are read)');
  return { name, uri, bmc: bmc(o.bmc), powerSensor: sensor as string | null, managed };
}

/** A member's own load report: `{ "metrics": { "queue": 12 } }`. */
export function parseLoadReport(body: unknown): Record<string, number> {
  const metrics = object(object(body, 'the body').metrics, 'metrics');
  const entries = Object.entries(metrics);
  if (entries.length === 0 || entries.length > 16) throw bad('metrics must hold 1 to 16 values');
  const out: Record<string, number> = {};
  for (const [k, v] of entries) {
    if (!METRIC_NAME.test(k) || k === 'cpu') throw bad(`metrics.${k}: a metric's name is lower case letters, digits and _, and "cpu" is the controller's own`);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1e12) throw bad(`metrics.${k} must be a number from 0 to 1e12`);
    out[k] = v;
  }
  return out;
}
