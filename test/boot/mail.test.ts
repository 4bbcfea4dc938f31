// The mail appliance for real: one instance of the OpenSMTPD layer (scripts/build-mail-layer.sh),
// published on a signed channel and applied with the provider onto a lab blade (its own
// libvirtd, QEMU under TCG), boots, starts smtpd from its rc.d hook and takes SMTP from this host:
// a dialogue checked reply by reply (relaying refused, the deployment's domain accepted), then
// the load the demo uses — a burst of 200 messages of 100 KiB over 4 connections — with every
// message accepted and, on the guest's console, discarded. Figures (layer size, boot to smtpd,
// messages/s, the guest's vCPU while loaded) are printed and kept in test-results/mail-boot.json.
// Names are wtm-*, the network 192.168.253.0/24; set STORM_LAB_ADDRESS_BASE when another lab
// may run on this machine at the same time, STORM_MAIL_BURST to try another burst.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sha256File } from '../lib/images.ts';
import { applianceFromChannelHcl, publishTestChannel, type TestChannel } from '../lib/channel.ts';
import { bladeServerHcl, startLab, type Blade, type Lab } from '../lib/lab.ts';
import { ReplyReader, SmtpSession, dotStuff, messageText, replyText, sendBurst, splitBurst, summarizeBurst } from '../lib/smtp-load.ts';
import { REPO_DIR, TerraformDir, resources, virsh } from '../lib/terraform.ts';

const GUEST = join(REPO_DIR, 'build', 'guest');
const RESULTS = join(REPO_DIR, 'test-results');
const LAN = '192.168.253';
const DOMAIN = 'corp.example';
// STORM_MAIL_BURST=MESSAGES,KIB,CONNECTIONS tries another load (e.g. to size the demo's).
const [burstMessages, burstKib, burstConnections] = (process.env.STORM_MAIL_BURST ?? '200,100,4').split(',').map(Number);
const BURST = { messages: burstMessages!, sizeBytes: burstKib! * 1024, connections: burstConnections! };
const img = (name: string) => ({ path: join(GUEST, name), sha256: sha256File(join(GUEST, name)) });

const tf = new TerraformDir();
let lab: Lab;
let blade: Blade;
let channel: TestChannel;
let consoleLog = '';
let ip = '';
let applied = 0;
const figures: Record<string, unknown> = {};

function hcl(): string {
  return `
provider "storm" {
  trusted_keys = ["${channel.publicKeyLine}"]
}
${bladeServerHcl(blade, '  accelerator = "tcg"')}
resource "storm_network" "lan" {
  server = storm_appliance_server.${blade.name}.id
  name   = "wtm-lan"
  cidr   = "${LAN}.0/24"
}
${applianceFromChannelHcl(channel.feedUrl, 'mail', `storm_appliance_server.${blade.name}.id`)}
# The deployment names the domain its mail appliances accept mail for.
resource "storm_deployment" "mail" {
  appliance = storm_appliance.mail.id
  name      = "wtm-corp-mail"
  file {
    path    = "/etc/smtpd/domains"
    content = "${DOMAIN}\\n"
  }
}
resource "storm_instance" "mx1" {
  name        = "wtm-mx1"
  deployments = [storm_deployment.mail.id]
  network     = storm_network.lan.name
  memory_mib  = 256
  state       = "running"
}
`;
}

/** The console as this host sees it: the blade's /var/log/libvirt is its lab dir's log/. */
const consoleText = (): string => (existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8').replace(/\r/g, '') : '');
const stormLines = (): string[] => consoleText().split('\n').filter((l) => l.startsWith('STORM-'));

async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | null | undefined | false | Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; console:\n${stormLines().join('\n')}`);
    await sleep(250);
  }
}

/** The guest's vCPU time, ns (libvirt's vcpu.0.time: time the vCPU thread ran). */
async function vcpuNs(): Promise<number> {
  const r = await virsh(blade.libvirtUri, 'domstats', '--vcpu', 'wtm-mx1');
  const m = /vcpu\.0\.time=(\d+)/.exec(r.stdout);
  if (!m) throw new Error(`no vcpu.0.time in domstats: ${r.output}`);
  return Number(m[1]);
}

const delivered = (): number => Math.max(0, ...stormLines().map((l) => Number(/^STORM-MAIL delivered=(\d+)$/.exec(l)?.[1] ?? 0)));

before(async () => {
  execFileSync('bash', [join(REPO_DIR, 'scripts', 'build-guest.sh')], { stdio: 'inherit' });
  execFileSync('bash', [join(REPO_DIR, 'scripts', 'build-test-layers.sh')], { stdio: 'inherit' });
  execFileSync('bash', [join(REPO_DIR, 'scripts', 'build-mail-layer.sh')], { stdio: 'inherit' });
  channel = await publishTestChannel([{
    name: 'mail', version: '1.0', label: 'Mail appliance (OpenSMTPD)',
    base: { name: 'testos', ...img('layers/base.qcow2') },
    image: img('layers/mail.qcow2'),
    boot: { kernel: img('vmlinuz'), initrd: img('initrd.gz'), cmdline: 'console=ttyS0 quiet panic=-1' },
  }]);
  lab = await startLab({ blades: 1, initialPower: 'on' });
  blade = lab.blades[0]!;
  tf.write(hcl());
  await tf.init();
});

after(async () => {
  const r = await tf.destroy();
  if (r.exitCode !== 0) console.log(`# destroy failed (exit ${r.exitCode}):\n${r.output.split('\n').map((l) => `#   ${l}`).join('\n')}`);
  tf.remove();
  await lab?.stop();
  await channel?.remove();
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'mail-boot.json'), JSON.stringify(figures, null, 2) + '\n');
});

describe('the SMTP client\'s pure core', () => {
  test('replies: continuation lines gather into one reply, split chunks too', () => {
    const r = new ReplyReader();
    assert.deepEqual(r.push('250-mx Hello\r\n250-SIZE 10'), []);
    assert.deepEqual(r.push('0\r\n250 HELP\r\n220 x'), [{ code: 250, lines: ['mx Hello', 'SIZE 100', 'HELP'] }]);
    assert.deepEqual(r.push('\r\n'), [{ code: 220, lines: ['x'] }]);
    assert.equal(replyText({ code: 250, lines: ['a', 'b'] }), '250-a\n250 b');
    assert.throws(() => new ReplyReader().push('hello\r\n'), /not an SMTP reply line/);
  });

  test('messages: the exact size asked for, CRLF lines, dot-stuffed on the wire', () => {
    for (const size of [300, 301, 302, 100 * 1024]) {
      const m = messageText({ from: 'a@b', to: 'c@d', sizeBytes: size, seq: 7, date: new Date(0) });
      assert.equal(Buffer.byteLength(m), size);
      assert.doesNotMatch(m.replace(/\r\n/g, ''), /[\r\n]/, 'no bare CR or LF');
    }
    assert.throws(() => messageText({ from: 'a@b', to: 'c@d', sizeBytes: 10, seq: 1 }), RangeError);
    assert.equal(dotStuff('.a\r\nb\r\n.\r\n..c'), '..a\r\nb\r\n..\r\n...c');
  });

  test('a burst splits evenly over its connections, and its report counts what was accepted', () => {
    assert.deepEqual(splitBurst(200, 4), [50, 50, 50, 50]);
    assert.deepEqual(splitBurst(10, 4), [3, 3, 2, 2]);
    assert.deepEqual(splitBurst(2, 4), [1, 1]);
    const r = summarizeBurst([{ startMs: 0, endMs: 10, code: 250 }, { startMs: 0, endMs: 30, code: 250 }, { startMs: 5, endMs: 5, code: 452, error: 'full' }], 1024, 2000);
    assert.equal(r.accepted, 2);
    assert.equal(r.messagesPerSecond, 1);
    assert.deepEqual(r.outcomes, { 250: 2, 452: 1 });
    assert.deepEqual(r.latencyMs, { p50: 10, p95: 30, max: 30 });
    assert.deepEqual(r.errors, ['full']);
  });
});

describe('the mail appliance runs OpenSMTPD', () => {
  test('apply boots one instance; its console says smtpd is up, from the layers and the deployment\'s domain', async (t) => {
    const r = await tf.apply();
    applied = Date.now();
    assert.equal(r.exitCode, 0, r.output);
    const inst = resources(await tf.state()).find((x) => x.type === 'storm_instance')!;
    consoleLog = join(lab.dir, blade.name, 'log', String(inst.values.console_log).replace(/^\/var\/log\/libvirt\//, ''));
    ip = String(inst.values.ip);
    assert.match(ip, new RegExp(`^${LAN.replace(/\./g, '\\.')}\\.\\d+$`));
    const up = await waitFor('STORM-SERVICE smtpd up', 240_000, () => stormLines().find((l) => l.startsWith('STORM-SERVICE smtpd ')));
    const upWallS = (Date.now() - applied) / 1000;
    await waitFor('STORM-READY', 30_000, () => stormLines().some((l) => l.startsWith('STORM-READY')));
    const lines = stormLines();
    t.diagnostic(`console:\n    ${lines.join('\n    ')}`);
    assert.deepEqual(lines.filter((l) => l.startsWith('STORM-ERROR')), []);
    assert.ok(lines.includes('STORM-LAYERS base mail'), lines.join('\n'));
    assert.ok(lines.includes(`STORM-FILE /etc/smtpd/domains ${DOMAIN}`));
    assert.ok(lines.includes(`STORM-IP ${ip}`));
    assert.ok(lines.indexOf(up) < lines.findIndex((l) => l.startsWith('STORM-READY')), 'services start before STORM-READY');
    const env = readFileSync(join(GUEST, 'layers', 'mail.env'), 'utf8');
    figures.layerBytes = Number(/^MAIL_LAYER_BYTES=(\d+)$/m.exec(env)![1]);
    figures.layerSha256 = /^MAIL_LAYER_SHA256=(\w+)$/m.exec(env)![1];
    figures.packages = /^MAIL_PACKAGES="(.*)"$/m.exec(env)![1]!.split(' ');
    figures.smtpdUpGuestUptimeS = Number(/uptime=([\d.]+)/.exec(up)![1]);
    figures.smtpdUpAfterApplyS = upWallS;
  });

  test('SMTP from this host: greeting, EHLO, relaying refused, the domain accepted, DATA queued, QUIT', async (t) => {
    const t0 = Date.now();
    const s = await SmtpSession.open({ host: ip, timeoutMs: 60_000 });
    figures.firstGreetingAfterApplyS = (t0 - applied) / 1000;
    assert.match(replyText(s.greeting), /^220 wtm-mx1 ESMTP OpenSMTPD/);
    const ehlo = await s.command('EHLO loadgen.storm.invalid', 250);
    assert.ok(ehlo.lines.some((l) => /^SIZE \d+/.test(l)), replyText(ehlo));
    await s.command('MAIL FROM:<sender@elsewhere.example>', 250);
    const relay = await s.command('RCPT TO:<someone@elsewhere.example>');
    assert.equal(relay.code, 550, `an open relay: ${replyText(relay)}`);
    const rcpt = await s.command(`RCPT TO:<postmaster@${DOMAIN}>`, 250);
    const done = await s.data(messageText({ from: 'sender@elsewhere.example', to: `postmaster@${DOMAIN}`, sizeBytes: 2048, seq: 0 }));
    assert.match(replyText(done), /^250 .*Message accepted for delivery/);
    const quit = await s.quit();
    assert.equal(quit?.code, 221);
    t.diagnostic([relay, rcpt, done, quit!].map(replyText).join('\n'));
    // Delivered is discarded: the guest counts it (smtpctl's scheduler.delivery.ok).
    await waitFor('STORM-MAIL delivered=1', 60_000, () => delivered() >= 1);
  });

  test(`a burst of ${BURST.messages} messages of ${BURST.sizeBytes / 1024} KiB over ${BURST.connections} connections: all accepted, all discarded`, async (t) => {
    const cpu0 = await vcpuNs();
    const wall0 = performance.now();
    const report = await sendBurst({ host: ip, ...BURST, from: 'load@loadgen.storm.invalid', to: `user@${DOMAIN}`, timeoutMs: 120_000 });
    const cpu1 = await vcpuNs();
    const wall1 = performance.now();
    t.diagnostic(JSON.stringify(report));
    assert.deepEqual(report.outcomes, { 250: BURST.messages }, report.errors.join('\n'));
    const before = delivered();
    await waitFor(`STORM-MAIL delivered=${BURST.messages + 1}`, 300_000, () => delivered() >= BURST.messages + 1);
    const drainedS = (performance.now() - wall1) / 1000;
    figures.burst = { ...BURST, seconds: report.seconds, messagesPerSecond: report.messagesPerSecond, mibPerSecond: report.mibPerSecond, latencyMs: report.latencyMs };
    figures.guestVcpuWhileLoaded = (cpu1 - cpu0) / 1e6 / (wall1 - wall0);
    figures.deliveredWhenBurstEnded = before - 1;
    figures.lastDeliveryAfterBurstS = drainedS;
    t.diagnostic(`figures: ${JSON.stringify(figures)}`);
  });

  test('destroy leaves no domain, network or pool on the blade', async () => {
    const r = await tf.destroy();
    assert.equal(r.exitCode, 0, r.output);
    assert.notEqual((await virsh(blade.libvirtUri, 'dominfo', 'wtm-mx1')).exitCode, 0);
    assert.notEqual((await virsh(blade.libvirtUri, 'net-info', 'wtm-lan')).exitCode, 0);
    assert.notEqual((await virsh(blade.libvirtUri, 'pool-info', 'storm')).exitCode, 0);
  });
});
