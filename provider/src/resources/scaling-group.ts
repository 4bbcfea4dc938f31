// storm_scaling_group: instances of a deployment that the storm controller adds and removes by
// load (the paper's scalability: a guest past 90 % of its CPU gets another instance) and, with
// `host_power`, the servers it powers on and off for them. Terraform owns the policy and the
// members' shape; the controller owns how many there are, so `desired` and `members` are
// computed and a plan after the controller scaled shows no change. Destroy drains: the
// controller removes every member, and the resource waits for it.
import { setTimeout as sleep } from 'node:timers/promises';
import { DiagnosticError, attr, type Diagnostic } from '../protocol/diagnostics.ts';
import { UNKNOWN } from '../protocol/cty/index.ts';
import type { ObjectValue, ResourceContext } from '../contract.ts';
import type { ResourceSchema } from '../schema/model.ts';
import { decodeBlock, defineResource, encodeBlock, type Model } from '../schema/typed.ts';
import { between, inRange, matches, oneOf } from '../schema/validators.ts';
import { controllerRequest, type ControllerConnection, type WireGroup, type WireGroupView as GroupView } from '../drivers/controller-api.ts';
import { resolveHardware } from '../host/instances.ts';
import { parseLayerId, type LayerRef } from '../host/refs.ts';
import { DEFAULT_POWER } from '../policy/power.ts';
import { DEFAULT_SCALING } from '../policy/scaling.ts';
import { fileBlock } from './file-block.ts';

const D = DEFAULT_SCALING;
const P = DEFAULT_POWER;

const schema = {
  typeName: 'storm_scaling_group',
  version: 0,
  description:
    'Instances of a deployment that the storm controller (`storm controller run`, configured in the provider\'s `controller` block) adds when the members\' CPU holds at or above `guest_cpu_high` for `window_seconds`, and removes when it holds below `guest_cpu_low`, or at once what fewer members would carry (`scale_in_target`) — the paper\'s 90 % rule, with cooldowns so it does not churn. ' +
    'Members are named `NAME-INDEX`; their `${member}` and `${index}` template variables are their own. With `host_power`, the controller also powers the deployments\' servers on (every powered one busy, or no room) and off (empty for a hold time) through their BMCs. ' +
    'Terraform owns the policy, the controller the member count: `desired` and `members` are computed. Destroy removes every member first.',
  block: {
    attributes: {
      id: { type: 'string', mode: 'computed', description: 'The group\'s name. Import with the name.' },
      name: { type: 'string', mode: 'required', forceNew: true, validators: [matches(/^[a-z][a-z0-9-]{0,40}$/, 'a group name: lower case letters, digits and dashes, starting with a letter, at most 41 characters')], description: 'Group name; members are `NAME-0`, `NAME-1`, …' },
      deployments: { type: { list: 'string' }, mode: 'required', description: 'The deployment on each server members may run on (`storm_deployment` ids); placement chooses among their servers.' },
      memory_mib: { type: 'number', mode: 'optional', observed: true, validators: [between(16, 1048576)], description: 'Each member\'s memory (MiB). Unset: the appliance\'s.' },
      vcpus: { type: 'number', mode: 'optional', observed: true, validators: [between(1, 256)], description: 'Each member\'s vCPUs. Unset: the appliance\'s.' },
      network: { type: 'string', mode: 'optional', default: 'default', description: 'The libvirt network (e.g. a `storm_network` name) members are attached to.' },
      variables: { type: { map: 'string' }, mode: 'optional', description: 'Values for the templates\' `${name}`; `${member}` (the member\'s name) and `${index}` are added per member.' },
      min: { type: 'number', mode: 'required', validators: [between(0, 1000)], description: 'Members kept whatever the load.' },
      max: { type: 'number', mode: 'required', validators: [between(0, 1000)], description: 'Members never exceeded.' },
      guest_cpu_high: { type: 'number', mode: 'optional', default: D.guestCpuHigh, validators: [inRange(0.01, 1)], description: 'Scale out when the members\' mean CPU (a share of their vCPUs, from the hypervisor\'s CPU time) holds at or above this for `window_seconds`. The default is the paper\'s 90 %.' },
      guest_cpu_low: { type: 'number', mode: 'optional', default: D.guestCpuLow, validators: [inRange(0, 1)], description: 'Scale in (`step` members) when it holds below this: far enough below the high mark that the load of one member fewer does not push the rest over it. `scale_in_target` also shrinks the group above it.' },
      window_seconds: { type: 'number', mode: 'optional', default: D.windowSeconds, validators: [inRange(0, 86400)], description: 'How long the load must hold past a threshold before anything is done: a burst is not a trend.' },
      step: { type: 'number', mode: 'optional', default: D.step, validators: [between(1, 100)], description: 'Members added or removed per decision.' },
      cooldown_out_seconds: { type: 'number', mode: 'optional', default: D.cooldownOutSeconds, validators: [between(0, 86400)], description: 'After a scale-out, no other for this long: the new member must boot and take load first.' },
      cooldown_in_seconds: { type: 'number', mode: 'optional', default: D.cooldownInSeconds, validators: [between(0, 86400)], description: 'After any change, no scale-in for this long: removing is the costlier mistake, so it waits longer than a scale-out.' },
      scale_out_target: { type: 'number', mode: 'optional', default: D.scaleOutTarget!, validators: [inRange(0, 1)], description: 'Proportional scale-out (Kubernetes\' HPA rule): a scale-out adds enough members that their mean would fall to this share of the high mark (`guest_cpu_high`, or `scale_on.high`), at least `step`. `0`: `step` members per decision, the paper\'s one at a time. The default came out of the energy simulator (`npm run bench -- energy`): one at a time, a step of load waits minutes for its members.' },
      scale_in_target: { type: 'number', mode: 'optional', default: D.scaleInTarget!, validators: [inRange(0, 1)], description: 'Proportional scale-in (HPA\'s rule downward): when fewer members would carry the window\'s highest load at no more than this share of the high mark, the surplus goes in one decision, taken first from the servers `host_power` may switch off, the one holding the fewest instances first, so it empties and can go off; an empty server then stays on only while the group\'s load is at its high mark. Below `scale_out_target` (a scale-in must leave members less busy than a scale-out does). `0`: the low mark alone, `step` at a time. The default came out of the energy simulator (`npm run bench -- energy`): without it a group that grew for a morning peak keeps every member, and every server, through the afternoon.' },
      saturated_growth: { type: 'number', mode: 'optional', default: D.saturatedGrowth!, validators: [inRange(0, 10)], description: 'When the members\' CPU held at 100 % (which says only that they want more, not how much), a scale-out adds at least this share of the group\'s size: `1` doubles it (HPA\'s scale-up bound). `0`: off.' },
      saturated_server_cpu: { type: 'number', mode: 'optional', default: D.saturatedServerCpu!, validators: [inRange(0.01, 1)], description: 'A server at least this busy (its guests\' CPU time over its CPUs) is saturated: its members get less CPU than they ask, so each counts at least at the high mark whatever it measures, and no new member is placed there (it waits for a server with room, which is `host_power`\'s cue). `1`: off.' },
      placement: { type: 'string', mode: 'optional', default: 'spread', validators: [oneOf('spread', 'consolidate')], description: 'Where a new member goes: `spread`, the least-loaded server that fits (the paper\'s rule: members get the most room), or `consolidate`, the fullest server that fits (fewer servers on, so `host_power` can switch more off).' },
      services: { type: { list: 'string' }, mode: 'optional', description: 'What the members provide, e.g. `data.storm_appliance.mail.provides`. With `dns_name`, each known service gets an SRV record (`_smtp._tcp.NAME` → NAME:25; known: smtp/mail, submission, imap, imaps, pop3, http/www/webserv, https, dns, ldap), and `smtp`/`mail` makes NAME a mail exchanger (MX). Others are listed on the status page only.' },
      dns_name: { type: 'string', mode: 'optional', validators: [matches(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, 'a DNS name: lower case letters, digits, dashes and dots')], description: 'A name on the network\'s DNS that resolves round-robin to every running member (A records; MX too for a mail appliance; SRV per service the appliance provides).' },
      drain_timeout_seconds: { type: 'number', mode: 'optional', default: 600, validators: [between(0, 86400)], description: 'How long destroy waits for the controller to remove every member.' },
      desired: { type: 'number', mode: 'computed', description: 'How many members the controller holds now.' },
      members: { type: { list: 'string' }, mode: 'computed', description: 'The members\' names, by index.' },
    },
    blocks: {
      file: fileBlock('A file written into every member (a template: `${member}`, `${index}` and `variables`).'),
      scale_on: {
        nesting: 'single',
        description: 'Scale on a load the members report themselves (`POST /v1/members/NAME/load` with the token in their seed) instead of their CPU.',
        block: {
          attributes: {
            metric: { type: 'string', mode: 'required', validators: [matches(/^[a-z][a-z0-9_]{0,31}$/, 'a metric name: lower case letters, digits and _')], description: 'The reported metric, e.g. `queue` (a mail queue\'s length) or `requests_per_second`.' },
            high: { type: 'number', mode: 'required', validators: [inRange(0, 1e12)], description: 'Scale out when the members\' mean holds at or above this.' },
            low: { type: 'number', mode: 'required', validators: [inRange(0, 1e12)], description: 'Scale in when it holds below this.' },
          },
        },
      },
      host_power: {
        nesting: 'single',
        description: 'Let the controller power the deployments\' servers on and off for this group: those whose `storm_appliance_server` has `power = "controller"` (and an `ipmi` block). Servers declared `on` count as powered and are never switched.',
        block: {
          attributes: {
            host_cpu_high: { type: 'number', mode: 'optional', default: P.hostCpuHigh, validators: [inRange(0.01, 1)], description: 'Power on another server when every powered one is at least this busy (its guests\' CPU time over its CPUs). The default is the paper\'s 90 %.' },
            min_servers_on: { type: 'number', mode: 'optional', default: P.minServersOn, validators: [between(0, 1000)], description: 'Servers kept on whatever the load. The last powered server of the group is never switched off, whatever this says: a group with no server on would have nowhere to start its next member, so 0 behaves as 1.' },
            empty_hold_seconds: { type: 'number', mode: 'optional', default: P.emptyHoldSeconds, validators: [between(0, 604800)], description: 'How long a server must have run no domain before it is powered off: a blade\'s boot (and the wait for it) costs more than some idle minutes.' },
            max_concurrent_changes: { type: 'number', mode: 'optional', default: P.maxConcurrentChanges, validators: [between(1, 100)], description: 'Power changes in flight at once (booting or stopping servers count).' },
            default_boot_seconds: { type: 'number', mode: 'optional', default: P.defaultBootSeconds, validators: [between(1, 3600)], description: 'Boot lead time assumed for a server the controller never powered on; afterwards its own (the median of its last 5 power-ons), so the fastest server is powered first.' },
          },
        },
      },
    },
  },
} as const satisfies ResourceSchema;

type Group = Model<typeof schema>;

function connection(ctx: ResourceContext): ControllerConnection {
  const c = ctx.provider.controller;
  if (!c) {
    throw new DiagnosticError('storm_scaling_group needs the provider\'s controller block', 'The storm controller runs scaling groups. Start one (`storm controller init`, then `storm controller run`) and add controller { url, token, ca_pem } to the provider block.');
  }
  return c;
}

const deploymentsOf = (g: Group): LayerRef[] => g.deployments.map((d, index) => parseLayerId(d, 'dep', [{ attribute: 'deployments' }, { index }]));

async function registration(g: Group): Promise<WireGroup> {
  const hw = await resolveHardware(deploymentsOf(g), { memoryMib: g.memory_mib, vcpus: g.vcpus });
  return {
    policy: {
      min: g.min, max: g.max,
      guestCpuHigh: g.scale_on?.high ?? g.guest_cpu_high,
      guestCpuLow: g.scale_on?.low ?? g.guest_cpu_low,
      windowSeconds: g.window_seconds, step: g.step,
      cooldownOutSeconds: g.cooldown_out_seconds, cooldownInSeconds: g.cooldown_in_seconds,
      scaleOutTarget: g.scale_out_target, scaleInTarget: g.scale_in_target, saturatedGrowth: g.saturated_growth, saturatedServerCpu: g.saturated_server_cpu,
    },
    shape: { deployments: g.deployments, memoryMib: hw.memoryMib, vcpus: hw.vcpus, network: g.network, variables: g.variables ?? {}, files: g.file, services: g.services ?? [], placement: g.placement === 'consolidate' ? 'consolidate' : 'spread' },
    dnsName: g.dns_name,
    metric: g.scale_on?.metric ?? 'cpu',
    power: g.host_power ? {
      hostCpuHigh: g.host_power.host_cpu_high, minServersOn: g.host_power.min_servers_on, emptyHoldSeconds: g.host_power.empty_hold_seconds,
      maxConcurrentChanges: g.host_power.max_concurrent_changes, defaultBootSeconds: g.host_power.default_boot_seconds,
    } : null,
  };
}

/** The state from what the controller holds; Terraform-only settings come from `base`. */
function fromView(base: Group, v: GroupView): Group {
  const custom = v.metric !== 'cpu';
  return {
    ...base,
    id: v.name,
    name: v.name,
    deployments: v.shape.deployments,
    memory_mib: v.shape.memoryMib,
    vcpus: v.shape.vcpus,
    network: v.shape.network,
    // Terraform tells an empty map from none; the controller does not.
    variables: Object.keys(v.shape.variables).length ? v.shape.variables : base.variables,
    min: v.policy.min,
    max: v.policy.max,
    guest_cpu_high: custom ? base.guest_cpu_high : v.policy.guestCpuHigh,
    guest_cpu_low: custom ? base.guest_cpu_low : v.policy.guestCpuLow,
    window_seconds: v.policy.windowSeconds,
    step: v.policy.step,
    cooldown_out_seconds: v.policy.cooldownOutSeconds,
    cooldown_in_seconds: v.policy.cooldownInSeconds,
    // A controller from before these settings holds none: the defaults are what it runs.
    scale_out_target: v.policy.scaleOutTarget ?? D.scaleOutTarget!,
    // A controller from before it runs none (the low mark alone) and says nothing: the configuration stands.
    scale_in_target: v.policy.scaleInTarget ?? base.scale_in_target ?? D.scaleInTarget!,
    saturated_growth: v.policy.saturatedGrowth ?? D.saturatedGrowth!,
    saturated_server_cpu: v.policy.saturatedServerCpu ?? D.saturatedServerCpu!,
    dns_name: v.dnsName,
    services: (v.shape.services ?? []).length ? v.shape.services : base.services,
    placement: v.shape.placement ?? 'spread',
    file: v.shape.files,
    scale_on: custom ? { metric: v.metric, high: v.policy.guestCpuHigh, low: v.policy.guestCpuLow } : null,
    host_power: v.power ? {
      host_cpu_high: v.power.hostCpuHigh, min_servers_on: v.power.minServersOn, empty_hold_seconds: v.power.emptyHoldSeconds,
      max_concurrent_changes: v.power.maxConcurrentChanges, default_boot_seconds: v.power.defaultBootSeconds,
    } : null,
    desired: v.desired,
    members: v.members.map((m) => m.name),
  };
}

async function put(ctx: ResourceContext, g: Group): Promise<Group> {
  const c = connection(ctx);
  const body = await registration(g);
  const reply = await explainedRequest(() => controllerRequest<GroupView>(c, 'PUT', `v1/groups/${g.name}`, body));
  if (!reply.body) throw new DiagnosticError('The controller lost the group', `It answered ${reply.status} to registering group "${g.name}"; apply again.`);
  return fromView(g, reply.body);
}

async function explainedRequest<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof DiagnosticError) throw err;
    throw new DiagnosticError('The storm controller did not take the request', `${(err as Error).message}.`);
  }
}

export const scalingGroup = defineResource<typeof schema>({
  schema,

  validate(config) {
    const diags: Diagnostic[] = [];
    if (typeof config.min === 'number' && typeof config.max === 'number' && config.min > config.max) {
      diags.push({ severity: 'error', summary: 'min is above max', detail: `min = ${config.min} and max = ${config.max}: the group could never hold both. Lower min or raise max.`, path: attr('min') });
    }
    // Unset, a threshold is its default (the config holds null until defaults are applied).
    const high = config.guest_cpu_high === null ? D.guestCpuHigh : config.guest_cpu_high;
    const low = config.guest_cpu_low === null ? D.guestCpuLow : config.guest_cpu_low;
    if (typeof high === 'number' && typeof low === 'number' && low >= high) {
      diags.push({ severity: 'error', summary: 'guest_cpu_low is not below guest_cpu_high', detail: `guest_cpu_low = ${low} and guest_cpu_high = ${high}: the group would scale in and out on the same load. Keep low well below high (the defaults are ${D.guestCpuLow} and ${D.guestCpuHigh}).`, path: attr('guest_cpu_low') });
    }
    const out = config.scale_out_target === null ? D.scaleOutTarget! : config.scale_out_target;
    const inTarget = config.scale_in_target === null ? D.scaleInTarget! : config.scale_in_target;
    if (typeof out === 'number' && typeof inTarget === 'number' && out > 0 && inTarget >= out) {
      const given = config.scale_in_target === null ? ` (its default, ${D.scaleInTarget})` : '';
      diags.push({ severity: 'error', summary: 'scale_in_target is not below scale_out_target', detail: `scale_in_target = ${inTarget}${given} and scale_out_target = ${out}: a scale-in would leave the members as busy as a scale-out does, and the group would shrink and grow again on the same load. Set scale_in_target well below ${out}, or 0 for the low mark alone.`, path: attr('scale_in_target') });
    }
    const on = config.scale_on as ObjectValue | null;
    if (on && typeof on.low === 'number' && typeof on.high === 'number' && on.low >= on.high) {
      diags.push({ severity: 'error', summary: 'scale_on.low is not below scale_on.high', detail: 'The group would scale in and out on the same load: keep low below high.', path: attr('scale_on', 'low') });
    }
    if (Array.isArray(config.deployments) && config.deployments.length === 0) {
      diags.push({ severity: 'error', summary: 'No deployments', detail: 'deployments needs at least one storm_deployment id.', path: attr('deployments') });
    }
    return diags;
  },

  refinePlan(prior, planned, config) {
    const next: ObjectValue = { ...planned };
    if (!prior) {
      next.id = typeof planned.name === 'string' ? planned.name : UNKNOWN;
      if (config.memory_mib === null) next.memory_mib = UNKNOWN;
      if (config.vcpus === null) next.vcpus = UNKNOWN;
    }
    // Only the controller knows how many members there will be once it has a new policy; with
    // nothing changed, the count it holds stays as refreshed (a plan after scaling is empty).
    const COUNT = ['desired', 'members'];
    const before = prior ? encodeBlock(schema.block, prior) : null;
    const changed = !before || Object.keys(planned).some((k) => !COUNT.includes(k) && JSON.stringify(planned[k]) !== JSON.stringify(before[k]));
    if (changed) {
      next.desired = UNKNOWN;
      next.members = UNKNOWN;
    }
    return { planned: next };
  },

  create(ctx, planned) {
    return put(ctx, planned);
  },

  async read(ctx, state) {
    const c = connection(ctx);
    const reply = await explainedRequest(() => controllerRequest<GroupView>(c, 'GET', `v1/groups/${state.name}`));
    // A group being drained is going: planning to create it again is what stops the drain.
    if (!reply.body || reply.body.deleting) return null;
    return fromView(state, reply.body);
  },

  update(ctx, _prior, planned) {
    return put(ctx, planned);
  },

  async delete(ctx, prior) {
    const c = connection(ctx);
    const first = await explainedRequest(() => controllerRequest<GroupView>(c, 'DELETE', `v1/groups/${prior.name}`));
    if (!first.body) return;
    const deadline = Date.now() + prior.drain_timeout_seconds * 1000;
    let said = -1;
    for (;;) {
      const reply = await explainedRequest(() => controllerRequest<GroupView>(c, 'GET', `v1/groups/${prior.name}`));
      if (!reply.body) return;
      if (reply.body.members.length !== said) {
        said = reply.body.members.length;
        ctx.log.info(`draining group ${prior.name}: ${said} member(s) left`, { members: reply.body.members.map((m) => m.name) });
      }
      if (Date.now() > deadline) {
        throw new DiagnosticError(`Group "${prior.name}" is not drained yet`, `The controller still holds ${said} member(s) after ${prior.drain_timeout_seconds} s (${reply.body.members.map((m) => m.name).join(', ')}). It keeps removing them; destroy again later, or raise drain_timeout_seconds.`, attr('drain_timeout_seconds'));
      }
      if (ctx.signal.aborted) throw new DiagnosticError('Interrupted while draining', `The controller goes on removing group "${prior.name}"'s members; destroy again to wait for it.`);
      await sleep(1000);
    }
  },

  async importState(ctx, id) {
    const c = connection(ctx);
    const reply = await explainedRequest(() => controllerRequest<GroupView>(c, 'GET', `v1/groups/${encodeURIComponent(id)}`));
    if (!reply.body) throw new DiagnosticError('No such scaling group', `The controller at ${c.url} has no group "${id}". Import with the group's name.`);
    const base = decodeBlock(schema.block, { name: id, deployments: reply.body.shape.deployments, min: reply.body.policy.min, max: reply.body.policy.max });
    return fromView(base, reply.body);
  },
});
