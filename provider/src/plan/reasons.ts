// Why a resource is replaced or destroyed, and what an update changes, in a reviewer's words.
// Terraform says which attributes force a replacement (`replace_paths`) and why a resource goes
// (`action_reason`); the tables below say what that means for storm's layers and instances.
import { parseServerId } from '../host/refs.ts';
import { SHA256_PATTERN } from '../rules.ts';
import { at, marked, markedWithin, referencedChanges, type Change, type PlanChanges } from './changes.ts';
import { isObject, type Json } from './plan-json.ts';
import { serverOfLayerId } from './servers.ts';

type Path = readonly (string | number)[];

/** A value as a line of text: checksums shortened, long text cut, secrets never shown. */
export function shown(value: Json | undefined, opts: { unknown?: boolean; sensitive?: boolean } = {}): string {
  if (opts.sensitive) return '(sensitive)';
  if (opts.unknown) return '(known after apply)';
  if (value === undefined || value === null) return '(unset)';
  if (typeof value === 'string') {
    if (SHA256_PATTERN.test(value)) return `${value.slice(0, 12)}…`;
    // References say their server by id (NAME@URI): the name is what a reviewer knows it by.
    const server = parseServerId(value);
    const layerServer = serverOfLayerId(value);
    const text = server ? server.name : layerServer ? `${value.slice(0, value.indexOf('@'))} on ${parseServerId(layerServer)?.name ?? layerServer}` : value;
    return text.length > 60 ? `${text.slice(0, 59)}…` : text;
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `(${value.length} item${value.length === 1 ? '' : 's'})`;
  return `(${Object.keys(value).length} setting${Object.keys(value).length === 1 ? '' : 's'})`;
}

const pathText = (p: Path): string => p.map((s, i) => (typeof s === 'number' ? `[${s}]` : i ? `.${s}` : s)).join('');

function beforeAfter(c: Change, p: Path): { before: string; after: string } {
  return {
    before: shown(at(c.before ?? null, p), { sensitive: marked(c.beforeSensitive, p) }),
    after: shown(at(c.after ?? null, p), { unknown: marked(c.afterUnknown, p), sensitive: marked(c.afterSensitive, p) }),
  };
}

/** What a value known only after apply waits for: the resources it refers to that change. */
function waitsFor(changes: PlanChanges, c: Change, attribute: string): string | null {
  const moving = referencedChanges(changes, c, attribute).filter((x) => x.action === 'replace' || x.action === 'create');
  if (!moving.length) return null;
  const what = moving.map((x) => `${x.address} ${x.action === 'replace' ? 'is replaced' : 'is new'}`);
  return what.join(', ');
}

interface ReasonRule {
  type: string;
  /** The replace path, dotted, with `*` for any last step. */
  path: string;
  say(x: { before: string; after: string; field: string; c: Change; changes: PlanChanges; unknown: boolean }): string;
}

const REPLACE_REASONS: readonly ReasonRule[] = [
  { type: 'storm_appliance', path: 'version', say: ({ before, after }) => `version ${before} → ${after} forces a new appliance layer` },
  { type: 'storm_appliance', path: 'name', say: ({ before, after }) => `name ${before} → ${after} is another appliance layer` },
  { type: 'storm_appliance', path: 'image.*', say: ({ before, after, field }) => `a new appliance image (${field} ${before} → ${after}) forces a new appliance layer` },
  { type: 'storm_appliance', path: 'base.*', say: ({ before, after, field }) => `base ${field} ${before} → ${after}: a layer cannot change what it stands on, so the appliance layer is made anew on the new base` },
  { type: 'storm_appliance', path: 'boot.*', say: ({ before, after, field }) => `boot ${field} ${before} → ${after} forces a new appliance` },
  {
    type: 'storm_deployment',
    path: 'appliance',
    say: ({ before, after, c, changes, unknown }) => {
      const cause = unknown ? waitsFor(changes, c, 'appliance') : null;
      return cause ? `it stands on the appliance layer, and ${cause}: a deployment layer cannot move to another appliance layer` : `appliance ${before} → ${after}: a deployment layer cannot move to another appliance layer`;
    },
  },
  { type: 'storm_deployment', path: 'image.*', say: ({ before, after, field }) => `a new deployment image (${field} ${before} → ${after}) forces a new deployment layer` },
  { type: 'storm_deployment', path: 'name', say: ({ before, after }) => `name ${before} → ${after} is another deployment layer` },
  {
    type: 'storm_instance',
    path: 'deployments',
    say: ({ c, changes, unknown }) => {
      const cause = unknown ? waitsFor(changes, c, 'deployments') : null;
      return cause ? `its deployments are made anew (${cause}): an instance layer cannot move to another deployment layer` : 'its server is no longer among its deployments\' servers';
    },
  },
  { type: 'storm_instance', path: 'disk_size_mib', say: ({ before, after }) => `disk ${before} → ${after} MiB: a disk cannot shrink, so the instance is made anew (its data goes)` },
  { type: 'storm_instance', path: 'variables', say: () => 'variables changed: templates are expanded once, when an instance is made' },
  { type: 'storm_instance', path: 'network', say: ({ before, after }) => `network ${before} → ${after}` },
  { type: 'storm_instance', path: 'name', say: ({ before, after }) => `name ${before} → ${after}` },
  { type: '*', path: 'server', say: ({ before, after }) => `server ${before} → ${after}: it moves to another server` },
  { type: 'storm_appliance_server', path: 'name', say: ({ before, after }) => `name ${before} → ${after} changes the id everything on it refers to` },
  { type: 'storm_appliance_server', path: 'libvirt_uri', say: ({ before, after }) => `libvirt_uri ${before} → ${after} is another host` },
  { type: 'storm_appliance_server', path: 'pool_path', say: ({ before, after }) => `pool_path ${before} → ${after}: a new storm pool` },
];

function ruleFor(type: string, p: Path): ReasonRule | null {
  const dotted = p.filter((s) => typeof s === 'string').join('.');
  const head = p.length > 1 && typeof p[0] === 'string' ? `${p[0]}.*` : null;
  return REPLACE_REASONS.find((r) => (r.type === type || r.type === '*') && (r.path === dotted || r.path === head)) ?? null;
}

/** One sentence per attribute that forces the replacement (or the reason Terraform gives). */
export function replacementReasons(changes: PlanChanges, c: Change): string[] {
  switch (c.reason) {
    case 'replace_because_tainted':
      return ['tainted: an earlier apply did not finish making it (or it was marked with terraform taint)'];
    case 'replace_by_request':
      return ['replacement requested (terraform apply -replace)'];
    case 'replace_by_triggers':
      return ['replace_triggered_by: a resource it names changed'];
  }
  const reasons = c.replacePaths.map((p) => {
    const { before, after } = beforeAfter(c, p);
    const rule = ruleFor(c.type, p);
    const field = String(p[p.length - 1] ?? '');
    return rule ? rule.say({ before, after, field, c, changes, unknown: markedWithin(c.afterUnknown, p) }) : `${pathText(p)} ${before} → ${after} forces replacement`;
  });
  const distinct = [...new Set(reasons)];
  return distinct.length ? distinct : ['Terraform gives no reason'];
}

const DESTROY_REASONS: Record<string, string> = {
  delete_because_no_resource_config: 'removed from the configuration',
  delete_because_wrong_repetition: 'its count or for_each changed shape',
  delete_because_count_index: 'its index is beyond count',
  delete_because_each_key: 'its key is no longer in for_each',
  delete_because_no_module: 'its module was removed',
  delete_because_no_move_target: 'its moved block names nothing',
};

export function destroyReasons(c: Change): string[] {
  const why = c.reason ? DESTROY_REASONS[c.reason] : undefined;
  const server = c.type === 'storm_appliance_server' ? ['storm forgets the server; its power stays as it is, and its pool goes only if empty'] : [];
  return [...(why ? [why] : []), ...server];
}

/** What an in-place update does, per resource type, beyond "this value changes". */
const UPDATE_NOTES: readonly { type: string; attribute: string; note(c: Change): string | null }[] = [
  { type: 'storm_instance', attribute: 'memory_mib', note: restartNote },
  { type: 'storm_instance', attribute: 'vcpus', note: restartNote },
  { type: 'storm_instance', attribute: 'disk_size_mib', note: () => 'the disk grows in place' },
  { type: 'storm_appliance', attribute: 'memory_mib', note: () => 'for instances made from now on; running ones keep theirs' },
  { type: 'storm_appliance', attribute: 'vcpus', note: () => 'for instances made from now on; running ones keep theirs' },
  { type: 'storm_deployment', attribute: 'file', note: () => 'for instances made from now on' },
  { type: 'storm_appliance_server', attribute: 'reserved_memory_mib', note: () => 'memory kept for the host itself; placement never gives it to instances' },
];

function restartNote(c: Change): string | null {
  const running = c.before?.state === 'running' && c.after?.state !== 'shutoff';
  return running ? 'the running instance restarts' : null;
}

/** Attributes storm computes from what it reads back: their change follows from the others. */
const FOLLOWS = new Set(['id', 'ip', 'mac', 'volume', 'base_volume', 'size_bytes', 'available_memory_mib', 'console_log', 'desired', 'members', 'hostname', 'hypervisor']);

/** One sentence per changed attribute (after Terraform's order: by name). */
export function updateDetails(c: Change): string[] {
  const names = [...new Set([...Object.keys(c.before ?? {}), ...Object.keys(c.after ?? {})])].sort();
  const lines: string[] = [];
  for (const name of names) {
    if (FOLLOWS.has(name)) continue;
    const unknown = marked(c.afterUnknown, [name]);
    const b = c.before?.[name];
    const a = c.after?.[name];
    if (!unknown && JSON.stringify(b ?? null) === JSON.stringify(a ?? null)) continue;
    const { before, after } = beforeAfter(c, [name]);
    const nested = isObject(a ?? null) || isObject(b ?? null) || Array.isArray(a) || Array.isArray(b);
    const text = nested && !marked(c.afterSensitive, [name]) ? `${name} changes` : `${name} ${before} → ${after}`;
    const note = UPDATE_NOTES.find((n) => n.type === c.type && n.attribute === name)?.note(c);
    lines.push(note ? `${text} (${note})` : text);
  }
  return lines.length ? lines : ['attributes storm computes change'];
}
