// What the demo shows while the experiment runs, read as an operator would: each blade's chassis
// power from its BMC, the group's members from libvirt and the controller's API, the controller's
// decisions with their reasons, the load generator's counts.
import { writeFileSync } from 'node:fs';
import { controllerRequest, type ControllerConnection, type WireGroupView } from '../../provider/src/drivers/controller-api.ts';
import { chassisPower, type Blade } from '../../test/lib/lab.ts';
import type { SteadyLoad } from '../../test/lib/smtp-load.ts';
import { virsh } from '../../test/lib/terraform.ts';
import { GROUP } from './inputs.ts';
import { paths } from './state.ts';

/** The chassis power its BMC reports ('?' when it does not answer). */
export function chassis(blade: Blade): Promise<'on' | 'off' | '?'> {
  return chassisPower(blade.bmc).catch(() => '?' as const);
}

export async function runningDomains(blade: Blade): Promise<string[]> {
  const r = await virsh(blade.libvirtUri, 'list', '--name', '--state-running');
  return r.exitCode === 0 ? r.stdout.split('\n').map((l) => l.trim()).filter(Boolean) : [];
}

/** What the viewer follows: the controller's decisions as they are made, the blades and the load. */
export class Watch {
  private readonly seen = new Set<string>();
  private readonly log: string[] = [];
  constructor(private readonly admin: ControllerConnection, private readonly blades: Blade[], private readonly onDecision: (reason: string) => void) {}

  async group(): Promise<WireGroupView | null> {
    const r = await controllerRequest<WireGroupView>(this.admin, 'GET', `v1/groups/${GROUP}`).catch(() => null);
    return r?.status === 200 ? r.body : null;
  }

  /** Hands on the controller's decisions made since the last call, oldest first (`tell` false: only remembers them). */
  async decisions(tell = true): Promise<void> {
    const r = await controllerRequest<{ at: number; reason: string }[]>(this.admin, 'GET', 'v1/decisions?limit=50').catch(() => null);
    for (const d of (r?.body ?? []).reverse()) {
      const key = `${d.at} ${d.reason}`;
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      const line = `${new Date(d.at).toISOString().slice(11, 19)} ${d.reason}`;
      this.log.push(line);
      if (tell) this.onDecision(d.reason);
    }
  }

  /** One line: members and where they run, each blade's power. */
  async line(load?: SteadyLoad, since?: number): Promise<string> {
    const parts: string[] = [];
    for (const b of this.blades) {
      const power = await chassis(b);
      const guests = power === 'on' ? (await runningDomains(b)).filter((n) => n.startsWith(`${GROUP}-`)) : [];
      parts.push(`${b.name} ${power}${guests.length ? ` [${guests.join(' ')}]` : ''}`);
    }
    if (load && since) {
      const secs = (Date.now() - since) / 1000;
      const notes = [load.refused ? `${load.refused} connects refused (a member still starting)` : '', load.failed ? `${load.failed} sessions failed` : ''].filter(Boolean);
      parts.push(`mail accepted ${load.total} (${(load.total / Math.max(1, secs)).toFixed(1)}/s)${notes.length ? `; ${notes.join(', ')}` : ''}`);
    }
    return parts.join('   ');
  }

  writeLog(): void {
    writeFileSync(paths.decisions, `${this.log.join('\n')}\n`);
  }
}

/** What a virsh listing still names on a blade ('?' entries when it could not be asked). */
export async function leftOn(blade: Blade, ...args: string[]): Promise<string[]> {
  const r = await virsh(blade.libvirtUri, ...args);
  if (r.exitCode !== 0) return [`? (virsh ${args[0]}: ${r.stderr.trim()})`];
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}
