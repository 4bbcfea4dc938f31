// The layers an apply uploads to each server, and the images it downloads for them. A base
// (and a boot kernel or initrd) is content-addressed and shared on a server (host/layers.ts):
// it is new only when no appliance that stays on that server already stands on it. An
// appliance or deployment layer is new whenever its resource is made.
import { SHA256_PATTERN } from '../rules.ts';
import { compareAddresses, finalValues, type Change, type PlanChanges } from './changes.ts';
import { isObject, type Json, type PlanJson, type StateModuleJson } from './plan-json.ts';
import type { Landing } from './servers.ts';
import type { Download, LayerKind, NewLayer } from './types.ts';

/** Image sizes in bytes, by sha256: whatever the caller could find out (local files, a channel). */
export type ImageSizes = ReadonlyMap<string, number>;

/** The sizes the plan itself knows: what each `data "storm_appliance"` read from its channel's feed. */
export function channelImageSizes(plan: PlanJson): Map<string, number> {
  const sizes = new Map<string, number>();
  const walk = (m: StateModuleJson | undefined): void => {
    for (const r of m?.resources ?? []) {
      if (r.mode !== 'data' || r.type !== 'storm_appliance') continue;
      const sha = r.values?.['image_sha256'];
      const size = r.values?.['image_size_bytes'];
      if (typeof sha === 'string' && typeof size === 'number' && size > 0) sizes.set(sha, size);
    }
    for (const child of m?.child_modules ?? []) walk(child);
  };
  walk(plan.prior_state?.values?.root_module);
  walk(plan.planned_values.root_module);
  return sizes;
}

interface Source {
  kind: LayerKind;
  label: string;
  sha256: string | null;
  url: string | null;
}

const text = (v: Json | undefined): string | null => (typeof v === 'string' ? v : null);

function sourcesOf(c: Change, values: { [k: string]: Json } | null): Source[] {
  if (!values) return [];
  const out: Source[] = [];
  const block = (k: string) => (isObject(values[k] ?? null) ? (values[k] as { [k: string]: Json }) : null);
  if (c.type === 'storm_appliance') {
    const base = block('base');
    if (base) out.push({ kind: 'base', label: text(base.name) ?? 'base', sha256: text(base.sha256), url: text(base.url) });
    const image = block('image');
    const label = [text(values.name), text(values.version)].filter(Boolean).join(' ') || c.address;
    if (image) out.push({ kind: 'appliance', label, sha256: text(image.sha256), url: text(image.url) });
    const boot = block('boot');
    if (boot) {
      out.push({ kind: 'kernel', label: `kernel of ${label}`, sha256: text(boot.kernel_sha256), url: text(boot.kernel_url) });
      out.push({ kind: 'initrd', label: `initrd of ${label}`, sha256: text(boot.initrd_sha256), url: text(boot.initrd_url) });
    }
  }
  if (c.type === 'storm_deployment') {
    const image = block('image');
    if (image) out.push({ kind: 'deployment', label: text(values.name) ?? c.address, sha256: text(image.sha256), url: text(image.url) });
  }
  return out;
}

const SHARED: ReadonlySet<LayerKind> = new Set(['base', 'kernel', 'initrd']);
const made = (c: Change) => c.action === 'create' || c.action === 'replace';

/** Every image the plan's new layers come from (for a caller that can look their sizes up). */
export function imageSources(changes: PlanChanges): { url: string; sha256: string }[] {
  return changes.all.filter(made).flatMap((c) => sourcesOf(c, c.after)).flatMap((s) => (s.url && s.sha256 && SHA256_PATTERN.test(s.sha256) ? [{ url: s.url, sha256: s.sha256 }] : []));
}

/** New layers by server id. */
export function newLayers(changes: PlanChanges, landings: ReadonlyMap<string, Landing>, sizes: ImageSizes): Map<string, NewLayer[]> {
  const serverOf = (c: Change): string | null => {
    const l = landings.get(c.address);
    return l?.kind === 'server' ? l.id : null;
  };
  // What stays on each server: the shared layers that are there already.
  const kept = new Map<string, Set<string>>();
  for (const c of changes.all.filter((x) => !made(x) && finalValues(x))) {
    const server = serverOf(c);
    if (!server) continue;
    for (const s of sourcesOf(c, c.before)) if (SHARED.has(s.kind) && s.sha256) kept.set(server, (kept.get(server) ?? new Set()).add(s.sha256));
  }
  const result = new Map<string, NewLayer[]>();
  for (const c of changes.all.filter(made)) {
    const server = serverOf(c);
    if (!server) continue;
    const have = kept.get(server) ?? new Set<string>();
    const layers = result.get(server) ?? [];
    for (const s of sourcesOf(c, c.after)) {
      if (SHARED.has(s.kind) && s.sha256) {
        if (have.has(s.sha256)) continue;
        have.add(s.sha256);
      }
      layers.push({ ...s, sizeBytes: s.sha256 ? (sizes.get(s.sha256) ?? null) : null, address: c.address });
    }
    kept.set(server, have);
    if (layers.length) result.set(server, layers);
  }
  for (const list of result.values()) list.sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || compareAddresses(a.address, b.address) || a.label.localeCompare(b.label));
  return result;
}

const KIND_ORDER: readonly LayerKind[] = ['base', 'kernel', 'initrd', 'appliance', 'deployment'];

/** The images behind the new layers, each once, with the servers it goes to. */
export function downloadsOf(layers: ReadonlyMap<string, readonly NewLayer[]>, label: (server: string) => string): Download[] {
  const byImage = new Map<string, Download>();
  for (const [server, list] of layers) {
    for (const l of list) {
      const key = l.sha256 ?? `${l.address} ${l.kind}`;
      const d = byImage.get(key) ?? { sha256: l.sha256, url: l.url, kinds: [], labels: [], sizeBytes: l.sizeBytes, servers: [] };
      if (!d.kinds.includes(l.kind)) d.kinds.push(l.kind);
      if (!d.labels.includes(l.label)) d.labels.push(l.label);
      if (!d.servers.includes(label(server))) d.servers.push(label(server));
      byImage.set(key, d);
    }
  }
  const all = [...byImage.values()];
  for (const d of all) {
    d.kinds.sort((a, b) => KIND_ORDER.indexOf(a) - KIND_ORDER.indexOf(b));
    d.labels.sort();
    d.servers.sort(compareAddresses);
  }
  return all.sort((a, b) => KIND_ORDER.indexOf(a.kinds[0]!) - KIND_ORDER.indexOf(b.kinds[0]!) || (a.labels[0] ?? '').localeCompare(b.labels[0] ?? '') || (a.sha256 ?? '').localeCompare(b.sha256 ?? ''));
}
