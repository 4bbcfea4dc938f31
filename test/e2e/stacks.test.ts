// stacks/: the cdktf app (both stacks, synthesized by cdktf-cli the way a user runs it, offline)
// says what storm will be asked for, and it and the plain-HCL stacks are valid Terraform against
// the provider in the repo-local mirror (npm run build first).
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { publishTestChannel, type TestChannel } from '../lib/channel.ts';
import { sha256File } from '../lib/images.ts';
import { CLI_CONFIG, REPO_DIR } from '../lib/terraform.ts';

type Block = Record<string, unknown>;
interface Synthesized {
  resource: Record<string, Record<string, Block>>;
  data?: Record<string, Record<string, Block>>;
  provider: Record<string, Block[]>;
  variable: Record<string, Block>;
  output: Record<string, Block>;
}

const work = mkdtempSync(join(tmpdir(), 'storm-wts-stacks-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** The environment cdktf-cli and terraform run in: the repo's Node 22 first, the mirror, nothing asked of the network. */
export const offlineEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
  PATH: `${join(REPO_DIR, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
  TF_CLI_CONFIG_FILE: CLI_CONFIG,
  CHECKPOINT_DISABLE: '1',
  CI: '1',
  TF_IN_AUTOMATION: '1',
  ...extra,
});

async function synth(out: string, env: Record<string, string> = {}): Promise<Record<string, Synthesized>> {
  const r = await execa('cdktf', ['synth', '--output', out], { cwd: REPO_DIR, env: offlineEnv(env), reject: false, all: true, timeout: 5 * 60_000 });
  assert.equal(r.exitCode, 0, r.all);
  assert.match(r.all ?? '', /Generated Terraform code for the stacks: mail-cluster, web-server/);
  const read = (stack: string) => JSON.parse(readFileSync(join(out, 'stacks', stack, 'cdk.tf.json'), 'utf8')) as Synthesized;
  return { 'mail-cluster': read('mail-cluster'), 'web-server': read('web-server') };
}

async function validate(dir: string): Promise<void> {
  const tf = (...args: string[]) => execa('terraform', args, { cwd: dir, env: offlineEnv({ TF_INPUT: '0' }), reject: false, all: true });
  const init = await tf('init', '-backend=false', '-no-color');
  assert.equal(init.exitCode, 0, `${dir}: terraform init\n${init.all}`);
  const v = await tf('validate', '-no-color');
  assert.equal(v.exitCode, 0, `${dir}: terraform validate\n${v.all}`);
}

const only = (s: Synthesized, type: string): Block[] => Object.values(s.resource[type] ?? {});

let stacks: Record<string, Synthesized>;
let imagesStacks: Record<string, Synthesized>;

describe('stacks: the cdktf app', () => {
  const out = join(work, 'cdktf.out');

  test('cdktf synth writes both stacks offline, with the provider from the mirror', async () => {
    stacks = await synth(out);
  });

  test('mail-cluster: two BMC-powered servers (the second the controller\'s), the mail appliance from the channel on both, a group scaling on guest CPU with host power and a DNS name on a storm network', () => {
    const s = stacks['mail-cluster']!;
    const servers = only(s, 'storm_appliance_server');
    assert.deepEqual(servers.map((x) => [x.name, x.power, x.libvirt_uri, (x.ipmi as Block).address]), [
      ['mail-1', 'on', '${var.server1_libvirt_uri}', '${var.server1_bmc_address}'],
      ['mail-2', 'controller', '${var.server2_libvirt_uri}', '${var.server2_bmc_address}'],
    ]);
    assert.equal((servers[0]!.ipmi as Block).password, '${var.bmc_password}');
    assert.equal(s.variable.bmc_password!.sensitive, true);
    assert.equal(s.variable.controller_token!.sensitive, true);
    const [data] = Object.values(s.data!.storm_appliance!);
    assert.deepEqual([data!.channel, data!.name], ['${var.channel_url}', 'mail']);
    assert.equal(only(s, 'storm_appliance').length, 2);
    const deployments = only(s, 'storm_deployment');
    assert.equal(deployments.length, 2);
    assert.deepEqual(deployments[0]!.file, [{ path: '/etc/smtpd/domains', content: '${var.mail_domain}\n' }]);
    assert.deepEqual(only(s, 'storm_network').map((n) => [n.name, n.cidr]), [['mail', '${var.network_cidr}'], ['mail', '${coalesce(var.server2_network_cidr, var.network_cidr)}']], 'server 2 takes its own subnet when given one');
    const [group] = only(s, 'storm_scaling_group');
    assert.equal(group!.name, 'mx');
    assert.equal(group!.dns_name, 'mail');
    assert.equal(group!.network, 'mail');
    // The policy is the stack's input, the paper's 90 % unless given.
    assert.equal(group!.guest_cpu_high, '${var.guest_cpu_high}');
    assert.equal(s.variable.guest_cpu_high!.default, 0.9);
    assert.deepEqual(group!.host_power, { host_cpu_high: '${var.host_cpu_high}', empty_hold_seconds: '${var.empty_hold_seconds}' });
    assert.equal(s.variable.host_cpu_high!.default, 0.9);
    assert.equal(s.variable.empty_hold_seconds!.default, 600);
    assert.match(String(group!.services), /^\$\{data\.storm_appliance\.\w+\.provides\}$/, 'services from the channel: MX for the mail appliance');
    assert.equal((group!.deployments as string[]).length, 2);
    assert.ok(s.provider.storm![0]!.controller);
    assert.equal(s.output.mx_fqdn!.value, 'mail.storm.internal');
  });

  test('web-server: Figure 2 from a channel, single-layer, its disks and panel passed through, an instance that keeps its user disks, the panel URL an output', () => {
    const s = stacks['web-server']!;
    const [appliance] = only(s, 'storm_appliance');
    assert.match(String(appliance!.disks), /\.disks\}$/);
    assert.match(String(appliance!.webpanel), /\.webpanel\}$/);
    assert.match(String((appliance!.image as Block).file), /\.system_disk_file\}$/);
    assert.match(String(((appliance!.dynamic as Record<string, Block>).base!).for_each), /base_name == null\) \? \[\] : \[1\]/);
    const [instance] = only(s, 'storm_instance');
    assert.equal(instance!.keep_user_disks, true);
    assert.equal(instance!.name, 'www1');
    assert.match(String(s.output.webpanel_url!.value), /^\$\{\(storm_instance\.(\w+)\.webpanel_url == null\) \? "" : storm_instance\.\1\.webpanel_url\}$/);
  });

  test('the synthesized configurations are valid Terraform', async () => {
    await validate(join(out, 'stacks', 'mail-cluster'));
    await validate(join(out, 'stacks', 'web-server'));
  });

  test('mail-cluster from local images (mailSource=images), with a name prefix: the layers, the direct boot, and valid', async () => {
    const out2 = join(work, 'cdktf.out.images');
    imagesStacks = await synth(out2, { STORM_MAIL_SOURCE: 'images', STORM_NAME_PREFIX: 'wts-' });
    const s = imagesStacks['mail-cluster']!;
    assert.equal(s.data?.storm_appliance, undefined, 'no channel');
    const [appliance] = only(s, 'storm_appliance');
    assert.deepEqual(appliance!.base, { name: '${var.base_name}', url: '${var.base_url}', sha256: '${var.base_sha256}' });
    assert.deepEqual(appliance!.image, { url: '${var.mail_image_url}', sha256: '${var.mail_image_sha256}' });
    assert.equal((appliance!.boot as Block).kernel_url, '${var.kernel_url}');
    assert.deepEqual(only(s, 'storm_scaling_group')[0]!.services, ['smtp']);
    assert.deepEqual(only(s, 'storm_appliance_server').map((x) => x.name), ['wts-mail-1', 'wts-mail-2']);
    await validate(join(out2, 'stacks', 'mail-cluster'));
  });

  test('a bad mailSource is refused when synthesizing, saying what to use', async () => {
    const r = await execa('cdktf', ['synth', '--output', join(work, 'bad')], { cwd: REPO_DIR, env: offlineEnv({ STORM_MAIL_SOURCE: 'ftp' }), reject: false, all: true });
    assert.notEqual(r.exitCode, 0);
    assert.match(r.all ?? '', /STORM_MAIL_SOURCE\) = "ftp": use 'channel'/);
  });
});

describe('stacks: plain HCL', () => {
  for (const name of ['mail-cluster', 'web-server']) {
    test(`stacks/hcl/${name} is valid Terraform`, async () => {
      const dir = join(work, `hcl-${name}`);
      cpSync(join(REPO_DIR, 'stacks', 'hcl', name, 'main.tf'), join(dir, 'main.tf'), { recursive: true });
      await validate(dir);
    });

    test(`stacks/hcl/${name} takes the same inputs as the cdktf stack (and name_prefix, which cdktf takes when synthesizing)`, () => {
      const hcl = [...readFileSync(join(REPO_DIR, 'stacks', 'hcl', name, 'main.tf'), 'utf8').matchAll(/^variable "([a-z0-9_]+)"/gm)].map((m) => m[1]!);
      const cdktf = new Set([...Object.keys(stacks[name]!.variable), ...Object.keys(imagesStacks[name]!.variable), 'name_prefix']);
      assert.deepEqual([...hcl].sort(), [...cdktf].sort());
    });
  }
});

describe('stacks: the cdktf stack and the HCL stack plan the same resources', () => {
  let channel: TestChannel;
  const project = join(work, 'project');
  const SHA = '0'.repeat(64);
  let inputs: Record<string, string>;

  before(async () => {
    // A channel with both appliances (plans read definitions, not images): Figure 2's single-layer
    // webserv (a .tgz with sys.img, disks, a panel) and a layered mail appliance booting a kernel.
    const images = join(work, 'images');
    mkdirSync(images);
    const file = (name: string) => {
      writeFileSync(join(images, name), `${name}\n`);
      return { path: join(images, name), sha256: sha256File(join(images, name)) };
    };
    channel = await publishTestChannel([
      { name: 'webserv', version: '1.0.0-0', label: 'Simple Web Server', base: null, image: file('webserv.tgz'), systemDiskFile: 'sys.img', disks: [{ name: 'hda3', type: 'swap', sizeMib: 128 }, { name: 'hda2', type: 'user', sizeMib: 96 }], webpanel: '/upload.php' },
      { name: 'mail', version: '1.0', label: 'Mail', base: { name: 'storm-test-base', ...file('base.qcow2') }, image: file('mail.qcow2'), boot: { kernel: file('vmlinuz'), initrd: file('initrd.gz'), cmdline: 'console=ttyS0 quiet' } },
    ]);
    mkdirSync(project);
    const config = JSON.parse(readFileSync(join(REPO_DIR, 'cdktf.json'), 'utf8')) as { app: string };
    writeFileSync(join(project, 'cdktf.json'), JSON.stringify({ ...config, app: `tsx ${join(REPO_DIR, 'stacks', 'main.ts')}` }));
    inputs = {
      TF_VAR_channel_url: channel.feedUrl,
      TF_VAR_channel_trusted_key: channel.publicKeyLine,
      TF_VAR_libvirt_uri: 'qemu+tcp://127.0.0.1/system',
      TF_VAR_bmc_address: '127.0.0.1',
      TF_VAR_bmc_password: 'password',
      TF_VAR_server1_libvirt_uri: 'qemu+tcp://127.0.0.121/system',
      TF_VAR_server2_libvirt_uri: 'qemu+tcp://127.0.0.122/system',
      TF_VAR_server1_bmc_address: '127.0.0.1',
      TF_VAR_server2_bmc_address: '127.0.0.1',
      TF_VAR_server2_bmc_port: '9602',
      TF_VAR_controller_url: 'https://127.0.0.1:8443',
      TF_VAR_controller_token: 'token',
      TF_VAR_controller_ca_pem: 'not used by a plan',
      TF_VAR_mail_domain: 'corp.example',
      TF_VAR_network_cidr: '192.168.254.0/24',
    };
  });
  after(async () => channel?.remove());

  const imageInputs = {
    TF_VAR_base_url: '/var/tmp/base.qcow2', TF_VAR_base_sha256: SHA,
    TF_VAR_mail_image_url: '/var/tmp/mail.qcow2', TF_VAR_mail_image_sha256: SHA,
    TF_VAR_kernel_url: '/var/tmp/vmlinuz', TF_VAR_kernel_sha256: SHA,
    TF_VAR_initrd_url: '/var/tmp/initrd.gz', TF_VAR_initrd_sha256: SHA,
  };

  /** Every planned resource as [type, planned values], in a stable order: what Terraform would make, whatever the addresses. */
  async function planned(dir: string): Promise<string[]> {
    const r = await execa('terraform', ['show', '-json', 'plan'], { cwd: dir, env: offlineEnv() });
    const plan = JSON.parse(r.stdout) as { resource_changes: { type: string; change: { after: unknown } }[] };
    return plan.resource_changes.map((c) => JSON.stringify([c.type, c.change.after])).sort();
  }

  const cases = [
    { stack: 'web-server', label: 'web-server', env: {} as Record<string, string>, hclEnv: {} as Record<string, string> },
    { stack: 'mail-cluster', label: 'mail-cluster from the channel', env: {}, hclEnv: {} },
    { stack: 'mail-cluster', label: 'mail-cluster from images', env: { STORM_MAIL_SOURCE: 'images', ...imageInputs }, hclEnv: { TF_VAR_channel_url: '', TF_VAR_channel_trusted_key: '', ...imageInputs } },
  ];
  for (const c of cases) {
    test(`${c.label}: cdktf diff and terraform plan of stacks/hcl/${c.stack} plan the same`, async () => {
      const out = join(work, `diff-${c.label.replaceAll(' ', '-')}`);
      const diff = await execa('cdktf', ['diff', c.stack, '--skip-provider-lock', '--output', out], {
        cwd: project, env: offlineEnv({ STORM_NAME_PREFIX: 'wts-', ...inputs, ...c.env }), reject: false, all: true, timeout: 5 * 60_000,
      });
      assert.equal(diff.exitCode, 0, diff.all);
      assert.match(diff.all ?? '', /Plan:.* to add/);
      const hcl = join(work, `hcl-plan-${c.label.replaceAll(' ', '-')}`);
      cpSync(join(REPO_DIR, 'stacks', 'hcl', c.stack, 'main.tf'), join(hcl, 'main.tf'), { recursive: true });
      const env = offlineEnv({ TF_INPUT: '0', ...inputs, TF_VAR_name_prefix: 'wts-', ...c.env, ...c.hclEnv });
      // An empty TF_VAR_ is still a value: the HCL stack's "no channel" is null, so drop them.
      for (const [k, v] of Object.entries(env)) if (v === '') delete env[k];
      const tf = (...args: string[]) => execa('terraform', args, { cwd: hcl, env, extendEnv: false, reject: false, all: true });
      assert.equal((await tf('init', '-no-color')).exitCode, 0);
      const plan = await tf('plan', '-no-color', '-out', 'plan');
      assert.equal(plan.exitCode, 0, plan.all);
      assert.deepEqual(await planned(hcl), await planned(join(out, 'stacks', c.stack)));
    });
  }
});
