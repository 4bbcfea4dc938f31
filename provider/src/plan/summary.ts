// A plan, summarized per appliance server for a pull request's reviewer: what is made,
// changed, replaced (and why) or destroyed on each server, what that does to the server's
// memory, vCPUs and disks against what it can give, the layers it uploads, and its power.
// Pure: a function of the parsed plan (and of image sizes the caller found); no I/O.
import { afterString, compareAddresses, finalValues, isStorm, planChanges, type Change, type PlanChanges } from './changes.ts';
import { labels, planCapacity, type CapacityResult } from './capacity.ts';
import { downloadsOf, imageSources, newLayers, type ImageSizes } from './layers.ts';
import type { PlanJson } from './plan-json.ts';
import { destroyReasons, replacementReasons, updateDetails } from './reasons.ts';
import { landings as planLandings, planServers, serverBefore, type Landing, type ServerFacts } from './servers.ts';
import type { ChangeKind, ChangeLine, Fit, PlanSummary, PowerChange, ServerSummary } from './types.ts';

export interface SummaryOptions {
  /** Sizes of images by sha256, where the caller knows them (the CLI reads local files). */
  imageSizes?: ImageSizes;
}

/** The images the plan's new layers come from, so a caller can find their sizes first. */
export function planImages(plan: PlanJson): { url: string; sha256: string }[] {
  return imageSources(planChanges(plan));
}

export function summarizePlan(plan: PlanJson, options: SummaryOptions = {}): PlanSummary {
  const changes = planChanges(plan);
  const lands = planLandings(changes);
  const servers = planServers(changes, lands);
  const label = labels(servers);
  const capacity = planCapacity(changes, lands, servers);
  const layers = newLayers(changes, lands, options.imageSizes ?? new Map());

  const counts: Record<ChangeKind, number> = { create: 0, update: 0, replace: 0, destroy: 0, forget: 0 };
  const linesByServer = new Map<string, ChangeLine[]>();
  const elsewhere: ChangeLine[] = [];
  for (const c of changes.all) {
    if (c.action === 'none') continue;
    counts[c.action]++;
    const { server, line } = placeLine(changes, c, lands.get(c.address) ?? { kind: 'unknown' }, capacity, label);
    if (server) linesByServer.set(server, [...(linesByServer.get(server) ?? []), line]);
    else elsewhere.push(line);
  }

  const warnings: string[] = [];
  const summaries: ServerSummary[] = [];
  for (const [id, facts] of servers) {
    const lines = linesByServer.get(id) ?? [];
    const power = powerChange(changes, facts);
    const cap = capacity.byServer.get(id)!;
    const newHere = layers.get(id) ?? [];
    const moved = cap.committedMemoryAfterMib !== cap.committedMemoryBeforeMib || cap.committedVcpusAfter !== cap.committedVcpusBefore || cap.fit.verdict === 'does-not-fit';
    if (!lines.length && !power && !newHere.length && !moved) continue;
    const conflicts = capacity.powerConflicts.get(id);
    if (conflicts) warnings.push(`${label(id)} is powered off while ${conflicts.join(', ')} would run on it: storm refuses to power off a server that runs domains, so the apply fails there`);
    summaries.push({
      id,
      name: label(id),
      uri: facts.uri,
      address: facts.change?.address ?? null,
      changes: lines.sort(byKindThenAddress),
      capacity: { ...cap, newLayerBytes: newHere.reduce((n, l) => n + (l.sizeBytes ?? 0), 0) },
      power,
      powerAfter: facts.after?.power ?? null,
      layers: newHere,
    });
  }
  summaries.sort((a, b) => compareAddresses(a.name, b.name));

  const problems = [
    ...summaries.flatMap((s) => (s.capacity.fit.verdict === 'does-not-fit' ? s.capacity.fit.problems : [])),
    ...[...capacity.predicted].flatMap(([address, p]) => ('unfit' in p ? [`${address} fits nowhere: ${p.unfit}`] : [])),
  ];
  const unknowns = [
    ...summaries.flatMap((s) => (s.capacity.fit.verdict === 'unknown' ? s.capacity.fit.problems : [])),
    ...[...capacity.predicted].flatMap(([address, p]) => ('unknown' in p ? [`${address}: ${p.unknown}`] : [])),
  ];
  const fit: Fit = problems.length ? { verdict: 'does-not-fit', problems } : unknowns.length ? { verdict: 'unknown', problems: unknowns } : { verdict: 'fits', problems: [] };

  return {
    terraformVersion: plan.terraform_version ?? null,
    counts,
    servers: summaries,
    elsewhere: elsewhere.sort(byKindThenAddress),
    downloads: downloadsOf(layers, label),
    fit,
    warnings,
    notes: notes(plan, changes),
  };
}

const KIND_ORDER: readonly ChangeKind[] = ['replace', 'destroy', 'forget', 'update', 'create'];
const byKindThenAddress = (a: ChangeLine, b: ChangeLine) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || compareAddresses(a.address, b.address);

/** The change as a line, and the server it is listed under (null: on no single server). */
function placeLine(changes: PlanChanges, c: Change, landing: Landing, capacity: CapacityResult, label: (id: string) => string): { server: string | null; line: ChangeLine } {
  const kind = c.action as ChangeKind;
  const details =
    kind === 'replace' ? replacementReasons(changes, c)
    : kind === 'update' ? updateDetails(c)
    : kind === 'destroy' ? destroyReasons(c)
    : kind === 'forget' ? ['Terraform forgets it; it stays on the server']
    : [];
  let server = finalValues(c) && landing.kind === 'server' ? landing.id : serverBefore(c);
  if (landing.kind === 'placement') {
    const p = capacity.predicted.get(c.address);
    if (p && 'server' in p) {
      server = p.server;
      details.push(`no server given: placement is expected to choose ${label(p.server)} of ${landing.candidates.map(label).join(', ')}`);
    } else if (p) {
      server = null;
      details.push('unfit' in p ? `fits nowhere: ${p.unfit}` : p.unknown);
    }
  }
  if (!isStorm(c)) server = null;
  return { server, line: { address: c.address, kind, details } };
}

function powerChange(changes: PlanChanges, facts: ServerFacts): PowerChange | null {
  const c = facts.change;
  if (!c || (c.action === 'none' && !changes.drift.has(c.address))) return null;
  const from = facts.before?.power ?? null;
  const to = facts.after?.power ?? null;
  const drift = changes.drift.get(c.address);
  const was = typeof drift?.before?.power === 'string' ? drift.before.power : null;
  const outside = drift && was !== from ? `it was ${was} at the last apply: changed outside Terraform` : null;
  if (from === to && !outside) return null;
  const hasBmc = c.after?.ipmi !== null && c.after?.ipmi !== undefined;
  if (c.action === 'create') return hasBmc || to !== 'on' ? { from: null, to, note: to === 'on' ? 'a new server: powered on through its BMC if it is off' : null } : null;
  if (!facts.after) return { from, to: null, note: 'storm forgets the server; its power stays as it is' };
  const note =
    to === 'controller' ? 'handed to the storm controller, which powers it on and off by load'
    : from === 'controller' ? `taken back from the controller; Terraform keeps it ${to}`
    : to === 'off' ? 'powered off through its BMC'
    : to === 'on' ? 'powered on through its BMC; the apply waits until libvirt answers'
    : null;
  return { from, to, note: [outside, note].filter(Boolean).join('; ') || null };
}

function notes(plan: PlanJson, changes: PlanChanges): string[] {
  const out: string[] = [];
  if (changes.all.some((c) => c.type === 'storm_instance')) {
    out.push('Committed memory and vCPUs count the storm_instance resources of this plan; domains made elsewhere (another configuration, scaling groups) are not in a plan, so the free memory shown is at most what is free.');
  }
  if (changes.all.some((c) => c.type === 'storm_scaling_group' && c.action !== 'none')) {
    out.push('Scaling groups\' members are the controller\'s: it places them when it scales, and they are not counted here.');
  }
  if (changes.all.some((c) => c.type === 'storm_instance' && finalValues(c) && !afterString(c, 'server').known)) {
    out.push('Instances without a server are placed at apply: "expected" is placement\'s own rule applied to this plan, in address order.');
  }
  if (plan.complete === false) out.push('Terraform marked this plan incomplete: some changes are deferred, and another plan follows this apply.');
  if (plan.errored === true) out.push('Terraform marked this plan as errored: it cannot be applied.');
  return out;
}
