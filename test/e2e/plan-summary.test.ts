// `storm plan-summary` on real plans: terraform plans a small rack of two lab blades (storm's
// provider from the repo-local mirror), applies it, then plans changes; `terraform show -json`
// of each saved plan goes through the built `storm plan-summary`, and the Markdown must say
// what a reviewer needs: each create, update and replacement (and why), the capacity numbers
// from the plan itself, and the warning when memory will not fit. Instances stay shut off:
// nothing here needs a guest to boot.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { startLab, type Blade, type Lab } from '../lib/lab.ts';
import { makeTestLayers, type TestLayers } from '../lib/images.ts';
import { REPO_DIR, TerraformDir, resources } from '../lib/terraform.ts';
import { formatBytes } from '../../provider/src/plan/markdown.ts';

const STORM = join(REPO_DIR, 'build', 'bin', 'storm');

let lab: Lab;
let layers: TestLayers;
const tf = new TerraformDir();

interface Rack {
  webVersion: string;
  /** memory_mib of wtp-mx1. */
  mx1: number;
  mx2: boolean;
  /** reserved_memory_mib per blade name. */
  reserve?: Record<string, number>;
}

function serverHcl(b: Blade, reserve?: number): string {
  return `
resource "storm_appliance_server" "${b.name}" {
  name        = "wtp-${b.name}"
  libvirt_uri = "${b.libvirtUri}"
${reserve === undefined ? '' : `  reserved_memory_mib = ${reserve}\n`}  ipmi {
    address  = "${b.bmc.address}"
    port     = ${b.bmc.port}
    username = "${b.bmc.username}"
    password = "${b.bmc.password}"
  }
}
`;
}

const layerBlocks = () => `
  base {
    name   = "wtp-testos"
    url    = "${layers.base.path}"
    sha256 = "${layers.base.sha256}"
  }
  image {
    url    = "${layers.appliance.path}"
    sha256 = "${layers.appliance.sha256}"
  }`;

const instanceHcl = (name: string, memory: number) => `
resource "storm_instance" "${name}" {
  name        = "wtp-${name}"
  deployments = [for d in storm_deployment.corp : d.id]
  memory_mib  = ${memory}
  state       = "shutoff"
}
`;

function rackHcl(r: Rack): string {
  const [b1, b2] = lab.blades as [Blade, Blade];
  return `${serverHcl(b1, r.reserve?.[b1.name])}${serverHcl(b2, r.reserve?.[b2.name])}
resource "storm_appliance" "mail" {
  for_each = { blade1 = storm_appliance_server.blade1.id, blade2 = storm_appliance_server.blade2.id }
  server   = each.value
  name     = "wtp-mail"
  version  = "1.0"
${layerBlocks()}
}

resource "storm_appliance" "web" {
  server  = storm_appliance_server.blade1.id
  name    = "wtp-web"
  version = "${r.webVersion}"
${layerBlocks()}
}

resource "storm_deployment" "corp" {
  for_each  = storm_appliance.mail
  appliance = each.value.id
  name      = "wtp-corp"
}
${instanceHcl('mx1', r.mx1)}${r.mx2 ? instanceHcl('mx2', 512) : ''}`;
}

interface PlanValues {
  prior_state?: { values?: { root_module?: { resources?: { type: string; name: string; values: Record<string, unknown> }[] } } };
}

/** Plans `r`, saves the plan, and returns its JSON and `storm plan-summary`'s Markdown. */
async function summary(r: Rack): Promise<{ markdown: string; plan: PlanValues }> {
  tf.write(rackHcl(r));
  const planned = await tf.run(['plan', '-no-color', '-out=tfplan']);
  assert.equal(planned.exitCode, 0, planned.output);
  const json = await tf.must(['show', '-json', 'tfplan']);
  const run = await execa(STORM, ['plan-summary'], { input: json.stdout, reject: false });
  assert.equal(run.exitCode, 0, run.stderr);
  assert.equal(run.stderr, '');
  return { markdown: run.stdout, plan: JSON.parse(json.stdout) as PlanValues };
}

/** A server's values in the state the plan started from (capacity moves a little on these blades, so it is read, not assumed). */
function priorServer(plan: PlanValues, label: string): { memory: number; reserved: number; name: string } {
  const s = plan.prior_state?.values?.root_module?.resources?.find((x) => x.type === 'storm_appliance_server' && x.name === label);
  assert.ok(s, `${label} in the plan's prior state`);
  return { memory: Number(s.values.memory_mib), reserved: Number(s.values.reserved_memory_mib), name: String(s.values.name) };
}

const V1: Rack = { webVersion: '1.0', mx1: 512, mx2: false };
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** Where placement put wtp-mx1: `blade1` or `blade2` (the resource label, and the lab's blade name). */
let mx1On = '';
let other = '';

before(async () => {
  lab = await startLab({ blades: 2, initialPower: 'on' });
  layers = makeTestLayers();
  tf.write(rackHcl(V1));
  await tf.init();
});

after(async () => {
  await tf.destroy();
  if (process.env.STORM_TEST_TF_LOG !== '1') tf.remove();
  layers.remove();
  await lab.stop();
});

describe('storm plan-summary on real plans', () => {
  test('the first plan: everything is created, each server gets the layers, with their sizes from the local images', async () => {
    const { markdown } = await summary(V1);
    assert.match(markdown, /^<!-- storm plan-summary -->\n### storm plan: 8 to create, 0 to change, 0 to replace, 0 to destroy on 2 servers — fits as far as is known\n/);
    const base = statSync(layers.base.path).size;
    const app = statSync(layers.appliance.path).size;
    assert.match(markdown, new RegExp(`\\| \`base\\.qcow2\` \`${layers.base.sha256.slice(0, 12)}\` \\| base wtp-testos \\| ${esc(formatBytes(base))} \\| wtp-blade1, wtp-blade2 \\|`));
    assert.match(markdown, new RegExp(`\\| \`appliance\\.qcow2\` \`${layers.appliance.sha256.slice(0, 12)}\` \\| appliance wtp-mail 1\\.0, wtp-web 1\\.0 \\| ${esc(formatBytes(app))} \\| wtp-blade1, wtp-blade2 \\|`));
    assert.match(markdown, /- `storm_deployment\.corp\["blade2"\]`/, 'the deployment lands on its server through for_each = storm_appliance.mail');
    assert.match(markdown, /- `storm_instance\.mx1`: placement chooses at apply among wtp-blade1, wtp-blade2, whose capacity is not known yet/);

    const applied = await tf.apply('tfplan');
    assert.equal(applied.exitCode, 0, applied.output);
    const mx1 = resources(await tf.state()).find((x) => x.type === 'storm_instance' && x.name === 'mx1');
    mx1On = String(mx1?.values.server).startsWith('wtp-blade1@') ? 'blade1' : 'blade2';
    other = mx1On === 'blade1' ? 'blade2' : 'blade1';
  });

  test('a create, an in-place update and a replacement, each on its server and said why; memory within the free room fits', async () => {
    const { markdown, plan } = await summary({ webVersion: '1.1', mx1: 1024, mx2: true });
    const here = priorServer(plan, mx1On);
    assert.match(markdown, /### storm plan: 1 to create, 1 to change, 1 to replace, 0 to destroy on 2 servers — fits\n/);
    assert.match(markdown, /- `storm_appliance\.web`: version 1\.0 → 1\.1 forces a new appliance layer/);
    assert.match(markdown, /- `storm_instance\.mx1`: memory_mib 512 → 1024/);
    assert.match(markdown, new RegExp(`- \`storm_instance\\.mx2\`: no server given: placement is expected to choose wtp-${other} of wtp-blade1, wtp-blade2`));
    const free = here.memory - here.reserved - 1024;
    assert.match(markdown, new RegExp(`\\| \\*\\*wtp-${mx1On}\\*\\* \\| 512 → 1024 \\(\\+512\\) of ${here.memory} − 128 reserved: ${free} free \\|`));
    assert.match(markdown, new RegExp(`\\| \\*\\*wtp-${other}\\*\\* \\| 0 → 512 \\(\\+512\\) of `));
    // The base is on blade1 already (wtp-mail stays on it): only the new appliance layer goes up.
    assert.match(markdown, /\| appliance wtp-web 1\.1 \| [\d.]+ KiB \| wtp-blade1 \|/);
    assert.doesNotMatch(markdown, /\| base wtp-testos \|/);
  });

  test('memory grown beyond what the server may give: the warning, in the plan\'s own numbers', async () => {
    const first = await summary(V1);
    const { memory } = priorServer(first.plan, mx1On);
    const grown = memory + 2048;
    const { markdown, plan } = await summary({ webVersion: '1.1', mx1: grown, mx2: true });
    const here = priorServer(plan, mx1On);
    const over = grown - (here.memory - here.reserved);
    assert.match(markdown, new RegExp(`### storm plan: 1 to create, 1 to change, 1 to replace, 0 to destroy on 2 servers — does not fit on wtp-${mx1On}\\n`));
    assert.match(markdown, new RegExp(`> \\[!WARNING\\]\\n> - wtp-${mx1On} would be ${over} MiB over: ${grown} MiB committed, ${here.memory} MiB of memory, 128 MiB of it reserved for the host\\n`));
    assert.match(markdown, new RegExp(`> - storm_instance\\.mx1 needs ${grown} MiB; wtp-${mx1On} has ${here.memory - here.reserved} MiB free beside the rest, so the apply refuses it`));
    assert.match(markdown, new RegExp(`\\| \\*\\*wtp-${mx1On}\\*\\* \\| 512 → ${grown} \\(\\+${grown - 512}\\) of ${here.memory} − 128 reserved: \\*\\*${over} over\\*\\* \\|.*\\| \\*\\*no\\*\\* \\|`));
  });

  test('capacity shrunk under the instances (a larger reserve): the server is over-committed', async () => {
    const first = await summary(V1);
    const { memory } = priorServer(first.plan, mx1On);
    const reserve = memory - 100;
    const { markdown, plan } = await summary({ ...V1, reserve: { [mx1On]: reserve } });
    const here = priorServer(plan, mx1On);
    const over = 512 - (here.memory - reserve);
    assert.match(markdown, new RegExp(`### storm plan: 0 to create, 1 to change, 0 to replace, 0 to destroy on 1 server — does not fit on wtp-${mx1On}\\n`));
    assert.match(markdown, new RegExp(`> - wtp-${mx1On} would be ${over} MiB over: 512 MiB committed, ${here.memory} MiB of memory, ${reserve} MiB of it reserved for the host`));
    assert.match(markdown, new RegExp(`- \`storm_appliance_server\\.${mx1On}\`: reserved_memory_mib 128 → ${reserve} \\(memory kept for the host itself`));
  });

  test('the state instead of a plan: exit 1, and what to run instead', async () => {
    const state = await tf.must(['show', '-json']);
    const run = await execa(STORM, ['plan-summary', '-'], { input: state.stdout, reject: false });
    assert.equal(run.exitCode, 1);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^storm plan-summary: standard input: This is a Terraform state \(`terraform show -json` without a plan file\), not a plan\.\n  Give it the JSON of a saved plan: terraform plan -out=tfplan && terraform show -json tfplan > plan\.json\.$/, 'execa strips the last newline');
  });
});

