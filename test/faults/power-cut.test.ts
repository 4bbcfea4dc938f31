// A fault in the middle of an apply: the server's libvirtd dies (its blade loses power) while
// storm uploads a layer. After the server is back, the same apply converges and no volume is
// left over from the interrupted one.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { bladeServerHcl, startLab, type Blade, type Lab } from '../lib/lab.ts';
import { localApplianceHcl, makeFilledImage, sha256File, type ImageFile } from '../lib/images.ts';
import { firstError, inventory, leaked, recordFault, type Inventory } from '../lib/faults.ts';
import { TerraformDir, virsh } from '../lib/terraform.ts';

let lab: Lab;
let blade: Blade;
let dir: string;
let baseline: Inventory;
const tf = new TerraformDir();

function hcl(base: ImageFile, app: ImageFile): string {
  return `${bladeServerHcl(blade)}
${localApplianceHcl('big', 'storm_appliance_server.blade1.id', { name: 'big', version: '1', baseName: 'bigos', base, image: app })}
resource "storm_deployment" "d" {
  appliance = storm_appliance.big.id
  name      = "d"
}
`;
}

async function volumes(): Promise<string[]> {
  const r = await virsh(blade.libvirtUri, 'vol-list', 'storm');
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter(Boolean).sort();
}

before(async () => {
  lab = await startLab({ blades: 1, initialPower: 'on' });
  blade = lab.blades[0]!;
  dir = mkdtempSync(join(tmpdir(), 'storm-fault-'));
  // A base with 512 MiB of real data: its upload takes long enough to be interrupted.
  const base = makeFilledImage(dir, 'base.qcow2', 512);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'app.qcow2'], { cwd: dir });
  tf.write(hcl(base, { path: join(dir, 'app.qcow2'), sha256: sha256File(join(dir, 'app.qcow2')) }));
  await tf.init();
  // The server first, so that the fault hits the layer upload.
  const r = await tf.run(['apply', '-auto-approve', '-no-color', '-target=storm_appliance_server.blade1']);
  assert.equal(r.exitCode, 0, r.output);
  baseline = await inventory(blade.libvirtUri);
});

after(async () => {
  await tf.destroy();
  tf.remove();
  rmSync(dir, { recursive: true, force: true });
  await lab.stop();
});

test('libvirtd dies during a layer upload; after it is back the apply converges without leftovers', async (t) => {
  const apply = tf.apply();
  const deadline = Date.now() + 60_000;
  while (!(await volumes()).some((v) => v.startsWith('base-bigos-'))) {
    assert.ok(Date.now() < deadline, 'the base upload never started');
    await new Promise((r) => setTimeout(r, 50));
  }
  await lab.setPower(blade, false);
  const failed = await apply;
  assert.equal(failed.exitCode, 1, failed.output);
  t.diagnostic(`interrupted apply said: ${failed.stderr.split('\n').filter((l) => l.trim()).slice(0, 3).join(' | ')}`);
  const said = firstError(failed.output);
  const namedServer = said.includes(`"${blade.name}"`);

  await lab.setPower(blade, true);
  const leftovers = await volumes();
  t.diagnostic(`after the fault the pool holds: ${leftovers.join(' ')}`);

  const r = await tf.apply();
  assert.equal(r.exitCode, 0, r.output);
  const base = (await volumes()).find((v) => /^base-bigos-[0-9a-f]{12}$/.test(v))!;
  assert.deepEqual(await volumes(), [base, `${base}.json`, 'app-big-1', 'app-big-1.json', 'dep-d', 'dep-d.json', 'storm-server.json'].sort(), 'exactly the layers and their records');
  const info = await virsh(blade.libvirtUri, 'vol-info', '--pool', 'storm', base);
  assert.match(info.stdout, /Capacity:\s+512\.00 MiB/);
  const converged = (await tf.plan()).exitCode === 0;
  assert.ok(converged, 'converged: no changes');
  assert.equal((await tf.destroy()).exitCode, 0);
  const leaks = leaked(baseline, await inventory(blade.libvirtUri));
  recordFault({ fault: 'blade powered off mid-upload of a 512 MiB base', said, namedServer, converged, leaks, overCommitted: '' });
  assert.ok(namedServer, failed.output);
  assert.deepEqual(leaks, []);
});
