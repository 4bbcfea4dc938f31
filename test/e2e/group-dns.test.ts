// A scaling group's DNS records on a real storm_network of a lab blade, asked of the network's
// own dnsmasq with a real resolver: round-robin A records that follow the members (fake
// addresses: no guests needed), MX and SRV for the group's name, all changed without restarting
// dnsmasq (its pid stays), kept in the stored definition too, and invisible to the network
// resource (terraform plan shows no changes). Also: a network left by an older storm (no selfmx)
// is adopted and made to answer MX, and failures name the network, the server and the fix.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { GroupDnsError, leasedAddresses, syncGroupDns, type GroupDns } from '../../provider/src/drivers/group-dns.ts';
import { MX_OPTION, bridgeName, groupOfRecord, networkXml, parseDnsHostElements } from '../../provider/src/drivers/networks.ts';
import { bladeServerHcl, startLab, type Blade, type Lab } from '../lib/lab.ts';
import { TerraformDir, virsh } from '../lib/terraform.ts';

// Unique per run: dnsmasq's processes are found by the network's name (below).
const NET = `gdns${randomBytes(2).toString('hex')}`;
const OLD = `${NET}old`;
const PREFIX = '192.168.251';
const DOMAIN = 'storm.internal';
const at = (n: number) => `${PREFIX}.${n}`;

let lab: Lab;
let blade: Blade;
let uri: string;
const tf = new TerraformDir();

interface HostBlock { hostname: string; ip: string }

function stackHcl(hosts: readonly HostBlock[]): string {
  const blocks = hosts.map((h) => `  host {\n    hostname = "${h.hostname}"\n    ip       = "${h.ip}"\n  }\n`).join('');
  return `${bladeServerHcl(blade)}
resource "storm_network" "lan" {
  server = storm_appliance_server.blade1.id
  name   = "${NET}"
  cidr   = "${PREFIX}.0/24"
${blocks}}
`;
}

const FIXED: HostBlock = { hostname: 'fixed', ip: at(5) };

// The network's dnsmasq, asked directly on the bridge's address (the blades share the host's
// network namespace). An empty answer is [] whatever the resolver's code for it.
const resolver = new Resolver({ timeout: 2000, tries: 3 });
const EMPTY = new Set(['ENODATA', 'ENOTFOUND']);
async function ask<T>(q: () => Promise<T[]>): Promise<T[]> {
  try {
    return await q();
  } catch (err) {
    if (err instanceof Error && 'code' in err && EMPTY.has(String(err.code))) return [];
    throw err;
  }
}
const a = async (name: string) => (await ask(() => resolver.resolve4(name))).sort();
const mx = (name: string) => ask(() => resolver.resolveMx(name));
const srv = (name: string) => ask(() => resolver.resolveSrv(name));

/** The pids of the network's dnsmasq (it forks a helper), from /proc: the blade's /run is its own. */
function dnsmasqPids(network: string): number[] {
  const conf = `--conf-file=/var/lib/libvirt/dnsmasq/${network}.conf`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    if (argv[0]?.endsWith('dnsmasq') && argv.includes(conf)) pids.push(Number(entry));
  }
  return pids.sort((x, y) => x - y);
}

async function dumpxml(network: string, ...flags: string[]): Promise<string> {
  const r = await virsh(uri, 'net-dumpxml', ...flags, network);
  assert.equal(r.exitCode, 0, r.output);
  return r.stdout;
}

/** The group's records in one definition: address → hostnames, SRV elements, as libvirt keeps them. */
async function groupRecords(network: string, group: string, ...flags: string[]): Promise<{ hosts: string[]; srv: string[] }> {
  const xml = await dumpxml(network, ...flags);
  const hosts = parseDnsHostElements(xml).filter((e) => groupOfRecord(e) === group).map((e) => `${e.ip} ${e.hostnames.join(' ')}`).sort();
  const srvs = [...xml.matchAll(/<srv [^>]*domain='([^']+)'[^>]*\/>/g)].filter((m) => m[1] === `${group}.${DOMAIN}`).map((m) => m[0]).sort();
  return { hosts, srv: srvs };
}

const mail = (addresses: string[], over: Partial<GroupDns> = {}): GroupDns => ({
  name: 'mail',
  addresses,
  mx: true,
  srv: [{ service: 'smtp', protocol: 'tcp', port: 25 }, { service: 'submission', protocol: 'tcp', port: 587 }],
  ...over,
});

before(async () => {
  lab = await startLab({ blades: 1, initialPower: 'on' });
  blade = lab.blades[0]!;
  uri = blade.libvirtUri;
  resolver.setServers([at(1)]);
  tf.write(stackHcl([FIXED]));
  await tf.init();
});

after(async () => {
  await tf.destroy();
  tf.remove();
  await virsh(uri, 'net-undefine', OLD).catch(() => undefined);
  await lab?.stop();
});

test('a network an older storm left behind (no selfmx) is adopted and made to answer MX', async () => {
  // What a create by an older storm, cut off between define and start, leaves: storm's bridge
  // for this server and name, the definition of that time.
  const serverId = `${blade.name}@${uri}`;
  const old = networkXml({ name: NET, bridge: bridgeName(serverId, NET), prefix: PREFIX, domain: DOMAIN, hosts: [FIXED] }).replace(`<dnsmasq:option value='${MX_OPTION}'/>`, '');
  writeFileSync(join(tf.dir, 'old.xml'), old);
  assert.equal((await virsh(uri, 'net-define', join(tf.dir, 'old.xml'))).exitCode, 0);
  const r = await tf.apply();
  assert.equal(r.exitCode, 0, r.output);
  assert.match(await dumpxml(NET), new RegExp(`<dnsmasq:option value='${MX_OPTION}'/>`));
  assert.deepEqual(await a(`fixed.${DOMAIN}`), [at(5)]);
  assert.equal(dnsmasqPids(NET).length > 0, true, 'dnsmasq found by its configuration file');
});

test('three members: A for the group\'s name gives each, bare and qualified; MX and SRV answer', async () => {
  const change = await syncGroupDns(uri, NET, mail([at(10), at(11), at(12)]));
  assert.deepEqual(change.added, [
    `A mail ${at(10)}`, `A mail ${at(11)}`, `A mail ${at(12)}`,
    `SRV _smtp._tcp.mail.${DOMAIN} mail.${DOMAIN}:25`, `SRV _submission._tcp.mail.${DOMAIN} mail.${DOMAIN}:587`,
  ]);
  assert.deepEqual(change.removed, []);
  assert.deepEqual(await a(`mail.${DOMAIN}`), [at(10), at(11), at(12)]);
  assert.deepEqual(await a('mail'), [at(10), at(11), at(12)]);
  assert.deepEqual(await mx(`mail.${DOMAIN}`), [{ exchange: `mail.${DOMAIN}`, priority: 1 }]);
  assert.deepEqual(await srv(`_smtp._tcp.mail.${DOMAIN}`), [{ name: `mail.${DOMAIN}`, port: 25, priority: 0, weight: 0 }]);
  assert.deepEqual(await srv(`_submission._tcp.mail.${DOMAIN}`), [{ name: `mail.${DOMAIN}`, port: 587, priority: 0, weight: 0 }]);
  assert.deepEqual(await a(`fixed.${DOMAIN}`), [at(5)], 'the network\'s own record stays');
});

test('members come and go: the answers follow, dnsmasq keeps running (same pid), the stored definition holds the same', async () => {
  const pids = dnsmasqPids(NET);
  const gone = await syncGroupDns(uri, NET, mail([at(10), at(12)]));
  assert.deepEqual(gone, { added: [], removed: [`A mail ${at(11)}`] });
  assert.deepEqual(await a(`mail.${DOMAIN}`), [at(10), at(12)]);
  const came = await syncGroupDns(uri, NET, mail([at(10), at(12), at(13)]));
  assert.deepEqual(came, { added: [`A mail ${at(13)}`], removed: [] });
  assert.deepEqual(await a(`mail.${DOMAIN}`), [at(10), at(12), at(13)]);
  assert.deepEqual(await mx(`mail.${DOMAIN}`), [{ exchange: `mail.${DOMAIN}`, priority: 1 }]);
  assert.deepEqual(dnsmasqPids(NET), pids, 'no dnsmasq restart, no network restart');

  const live = await groupRecords(NET, 'mail');
  assert.deepEqual(live.hosts, [10, 12, 13].map((n) => `${at(n)} mail mail.storm-group.invalid`));
  assert.equal(live.srv.length, 2);
  assert.deepEqual(await groupRecords(NET, 'mail', '--inactive'), live, 'persistent: what the network gets when it starts again');
});

test('the same records again change nothing', async () => {
  const pids = dnsmasqPids(NET);
  assert.deepEqual(await syncGroupDns(uri, NET, mail([at(13), at(10), at(12), at(10)])), { added: [], removed: [] });
  assert.deepEqual(dnsmasqPids(NET), pids);
});

test('terraform sees only the network\'s own records: no changes; its host blocks change around the group\'s', async () => {
  const plan = await tf.plan();
  assert.equal(plan.exitCode, 0, plan.output);
  assert.match(plan.stdout, /No changes/);

  const pids = dnsmasqPids(NET);
  // A block before the existing one: libvirt appends it, the state keeps the configuration's order.
  tf.write(stackHcl([{ hostname: 'relay', ip: at(6) }, FIXED]));
  const r = await tf.apply();
  assert.equal(r.exitCode, 0, r.output);
  assert.deepEqual(await a(`relay.${DOMAIN}`), [at(6)]);
  assert.deepEqual(await a(`mail.${DOMAIN}`), [at(10), at(12), at(13)], 'the group\'s records untouched');
  assert.deepEqual(dnsmasqPids(NET), pids);
  const again = await tf.plan();
  assert.equal(again.exitCode, 0, again.output);
});

test('a host block at a member\'s address is refused, naming the group; the configuration back converges', async () => {
  tf.write(stackHcl([{ hostname: 'relay', ip: at(6) }, FIXED, { hostname: 'squat', ip: at(12) }]));
  const r = await tf.apply();
  assert.equal(r.exitCode, 1, r.output);
  assert.match(r.stderr, /Error: The address already has a DNS record/);
  assert.match(r.stderr, /with storm_network\.lan/);
  assert.match(r.stderr, /already\s+has\s+a\s+DNS\s+record\s+for\s+192\.168\.251\.12:\s+scaling\s+group\s+"mail"'s\s+record/);
  assert.match(r.stderr, /libvirt\s+keeps\s+one\s+record\s+per\s+address\.\s+A\s+member\s+of\s+scaling\s+group\s+"mail"\s+has\s+that\s+address/);
  assert.deepEqual(await a(`mail.${DOMAIN}`), [at(10), at(12), at(13)]);
  tf.write(stackHcl([{ hostname: 'relay', ip: at(6) }, FIXED]));
  const back = await tf.apply();
  assert.equal(back.exitCode, 0, back.output);
  assert.equal((await tf.plan()).exitCode, 0);
});

test('round-robin host blocks of the network: one of them is removed alone (libvirt deletes by address)', async () => {
  tf.write(stackHcl([{ hostname: 'relay', ip: at(6) }, { hostname: 'relay', ip: at(7) }, FIXED]));
  assert.equal((await tf.apply()).exitCode, 0);
  assert.deepEqual(await a(`relay.${DOMAIN}`), [at(6), at(7)]);
  tf.write(stackHcl([{ hostname: 'relay', ip: at(7) }, FIXED]));
  const r = await tf.apply();
  assert.equal(r.exitCode, 0, r.output);
  assert.deepEqual(await a(`relay.${DOMAIN}`), [at(7)]);
  assert.deepEqual(await a(`mail.${DOMAIN}`), [at(10), at(12), at(13)]);
  assert.equal((await tf.plan()).exitCode, 0);
});

test('a member at an address the network\'s own record holds is reported; the other members are served', async () => {
  await assert.rejects(syncGroupDns(uri, NET, mail([at(5), at(10), at(12), at(13)])), (err: Error) => {
    assert.ok(err instanceof GroupDnsError && err.problem === 'conflict', String(err));
    assert.match(err.message, new RegExp(`Network "${NET}" on the server at ${uri.replace(/[+.]/g, '\\$&')} already has DNS records`));
    assert.match(err.message, /192\.168\.251\.5 \(the record for "fixed", a storm_network host block/);
    assert.match(err.message, /Remove or change the storm_network host block/);
    return true;
  });
  assert.deepEqual(await a(`fixed.${DOMAIN}`), [at(5)]);
  assert.deepEqual(await a(`mail.${DOMAIN}`), [at(10), at(12), at(13)]);
});

test('leases: MAC → address of every current lease, from libvirt', async () => {
  // No guests: leases written where libvirt's lease helper keeps them (in the blade's own
  // /var/lib/libvirt), which virsh net-dhcp-leases reads at each call.
  const bridge = /<bridge name='([^']+)'/.exec(await dumpxml(NET))![1]!;
  const expiry = Math.floor(Date.now() / 1000) + 3600;
  const leases = [
    { 'ip-address': at(101), 'mac-address': '52:54:00:AA:BB:01', hostname: 'mail-0', 'client-id': '01:52:54:00:aa:bb:01', 'expiry-time': expiry },
    { 'ip-address': at(102), 'mac-address': '52:54:00:aa:bb:02', 'expiry-time': expiry },
    { 'ip-address': at(103), 'mac-address': '52:54:00:aa:bb:03', 'expiry-time': 1000 },
  ];
  writeFileSync(join(lab.dir, blade.name, 'lib', 'dnsmasq', `${bridge}.status`), JSON.stringify(leases));
  assert.deepEqual(await leasedAddresses(uri, NET), new Map([['52:54:00:aa:bb:01', at(101)], ['52:54:00:aa:bb:02', at(102)]]));
});

test('a stopped network takes the records in its definition; one without selfmx is told how to get MX', async () => {
  const old = networkXml({ name: OLD, bridge: 'sbold-gdns', prefix: PREFIX, domain: DOMAIN, hosts: [] }).replace(`<dnsmasq:option value='${MX_OPTION}'/>`, '');
  writeFileSync(join(tf.dir, 'older.xml'), old);
  assert.equal((await virsh(uri, 'net-define', join(tf.dir, 'older.xml'))).exitCode, 0);
  await assert.rejects(syncGroupDns(uri, OLD, mail([at(20)])), (err: Error) => {
    assert.ok(err instanceof GroupDnsError && err.problem === 'no-mx', String(err));
    assert.match(err.message, new RegExp(`Network "${OLD}" on the server at \\S+ does not answer MX queries: it was made by an earlier storm`));
    assert.match(err.message, /replace the network \(`terraform apply -replace=`/);
    assert.match(err.message, /<dnsmasq:option value='selfmx'\/>/);
    assert.match(err.message, /other records are in place/);
    return true;
  });
  assert.deepEqual((await groupRecords(OLD, 'mail', '--inactive')).hosts, [`${at(20)} mail mail.storm-group.invalid`]);
  assert.deepEqual(await syncGroupDns(uri, OLD, mail([at(20)], { mx: false })), { added: [], removed: [] }, 'without MX wanted, nothing is missing');
});

test('a network that does not exist is named, with the server and the fix', async () => {
  for (const work of [() => syncGroupDns(uri, 'nosuchnet', mail([at(10)])), () => leasedAddresses(uri, 'nosuchnet')]) {
    await assert.rejects(work(), (err: Error) => {
      assert.ok(err instanceof GroupDnsError && err.problem === 'no-network', String(err));
      assert.match(err.message, new RegExp(`^Network "nosuchnet" does not exist on the server at ${uri.replace(/[+.]/g, '\\$&')}, so .* create it \\(a storm_network\\)`));
      return true;
    });
  }
});

test('no members and no services: the group\'s records are gone, everything else stays, terraform sees no change', async () => {
  const change = await syncGroupDns(uri, NET, { name: 'mail', addresses: [], mx: false, srv: [] });
  assert.equal(change.removed.length, 5, change.removed.join(', '));
  assert.deepEqual(await a(`mail.${DOMAIN}`), []);
  assert.deepEqual(await srv(`_smtp._tcp.mail.${DOMAIN}`), []);
  assert.deepEqual(await groupRecords(NET, 'mail', '--inactive'), { hosts: [], srv: [] });
  assert.deepEqual(await a(`fixed.${DOMAIN}`), [at(5)]);
  assert.deepEqual(await a(`relay.${DOMAIN}`), [at(7)]);
  assert.equal((await tf.plan()).exitCode, 0);
});
