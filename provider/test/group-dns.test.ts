// A scaling group's DNS records: parsing what virsh says (recorded answers, fixtures/group-dns/
// README.md), planning the net-updates that make a definition hold exactly the group's records,
// and the storm_network side (its records only; a network answers MX). test/e2e/group-dns.test.ts
// does the same against a real network's dnsmasq.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  GroupDnsError,
  dnsView,
  mergeScopes,
  parseLeases,
  planGroupDns,
  syncGroupDns,
  type DnsOp,
  type DnsView,
  type GroupDns,
} from '../src/drivers/group-dns.ts';
import { answersMx, groupOfRecord, networkXml, parseDnsHostElements, parseDnsHosts, unescapeXml, xmlAttribute } from '../src/drivers/networks.ts';
import { network } from '../src/resources/network.ts';
import { validateBlock } from '../src/schema/validate.ts';

const fixture = (name: string) => readFileSync(new URL(`fixtures/group-dns/${name}`, import.meta.url), 'utf8');
const LIVE = fixture('net-dumpxml-live.xml');
const LEASED = new Map([['52:54:00:aa:bb:01', '192.168.251.101'], ['52:54:00:aa:bb:02', '192.168.251.102']]);

const mail = (over: Partial<GroupDns> = {}): GroupDns => ({ name: 'mail', addresses: ['192.168.251.13', '192.168.251.14'], mx: true, srv: [{ service: 'smtp', protocol: 'tcp', port: 25 }], ...over });
const brief = (ops: readonly DnsOp[]) => ops.map((o) => `${o.command} ${o.xml}`);

test('leases: MAC (lowercase) → IPv4, with or without the header', () => {
  assert.deepEqual(parseLeases(fixture('net-dhcp-leases.txt')), LEASED);
  assert.deepEqual(parseLeases(fixture('net-dhcp-leases-q.txt')), LEASED);
  assert.deepEqual(parseLeases(''), new Map());
});

test('leases: IPv6, bad addresses and lines that are no lease are skipped; a MAC keeps its lease that expires last', () => {
  const out = [
    ' 2026-11-30 15:00:00   52:54:00:AA:BB:03   ipv4   192.168.251.103/24   -   -',
    ' 2026-11-30 15:00:00   52:54:00:aa:bb:04   ipv6   fd00::4/64   -   00:04:aa',
    ' 2026-11-30 15:00:00   52:54:00:aa:bb:05   ipv4   192.168.251.999/24   -   -',
    ' 2026-11-30 16:00:00   52:54:00:aa:bb:06   ipv4   192.168.251.116/24   web-1   01:52:54:00:aa:bb:06',
    ' 2026-11-30 15:00:00   52:54:00:aa:bb:06   ipv4   192.168.251.106/24   web-1   01:52:54:00:aa:bb:06',
    'error: something virsh said',
    ' Expiry Time   MAC address   Protocol   IP address   Hostname   Client ID or DUID',
  ].join('\n');
  assert.deepEqual(parseLeases(out), new Map([['52:54:00:aa:bb:03', '192.168.251.103'], ['52:54:00:aa:bb:06', '192.168.251.116']]));
});

test('host records: the <dns> section only (a DHCP <host> is no DNS record), each with its hostnames and owner', () => {
  const hosts = parseDnsHostElements(LIVE);
  assert.deepEqual(hosts.map((h) => [h.ip, h.hostnames.join(' '), groupOfRecord(h)]), [
    ['192.168.251.5', 'fixed', null],
    ['192.168.251.11', 'mail', null],
    ['192.168.251.13', 'mail mail.storm-group.invalid', 'mail'],
    ['192.168.251.14', 'mail mail.storm-group.invalid', 'mail'],
  ]);
});

test('storm_network reads its own records only: a scaling group\'s are left out', () => {
  assert.deepEqual(parseDnsHosts(LIVE), [{ hostname: 'fixed', ip: '192.168.251.5' }, { hostname: 'mail', ip: '192.168.251.11' }]);
});

test('a network\'s DNS as a view: domain, SRV records (priority and weight 0 when absent), MX', () => {
  const v = dnsView(LIVE);
  assert.equal(v.domain, 'storm.internal');
  assert.deepEqual(v.srv, [{ service: 'smtp', protocol: 'tcp', domain: 'mail.storm.internal', target: 'mail.storm.internal', port: 25, priority: 0, weight: 0 }]);
  assert.equal(v.mx, true);
  assert.equal(answersMx(LIVE.replace("<dnsmasq:option value='selfmx'/>", '')), false);
});

test('storm networks answer MX (selfmx), and records sharing an address are one record', () => {
  const xml = networkXml({ name: 'lan', bridge: 'sbabcd-lan', prefix: '192.168.251', domain: 'storm.internal', hosts: [{ hostname: 'db', ip: '192.168.251.5' }, { hostname: 'db2', ip: '192.168.251.5' }] });
  assert.equal(answersMx(xml), true);
  assert.deepEqual(parseDnsHostElements(xml), [{ ip: '192.168.251.5', hostnames: ['db', 'db2'] }]);
});

test('XML values are unescaped, in either quote style', () => {
  assert.equal(unescapeXml('a&amp;b&apos;&#65;&#x42;&unknown;'), "a&b'AB&unknown;");
  assert.equal(xmlAttribute(` service="smtp" port='25'`, 'service'), 'smtp');
  assert.equal(xmlAttribute(` service="smtp" port='25'`, 'port'), '25');
  assert.equal(xmlAttribute(` service="smtp"`, 'domain'), null);
});

test('plan: what is there already is not written again', () => {
  assert.deepEqual(planGroupDns(dnsView(LIVE), mail()), { ops: [], conflicts: [], mxMissing: false });
});

test('plan: a member gone is deleted by its address alone, a new one added with the mark; deletes first', () => {
  const plan = planGroupDns(dnsView(LIVE), mail({ addresses: ['192.168.251.15', '192.168.251.13'] }));
  assert.deepEqual(brief(plan.ops), [
    "delete <host ip='192.168.251.14'/>",
    "add-last <host ip='192.168.251.15'><hostname>mail</hostname><hostname>mail.storm-group.invalid</hostname></host>",
  ]);
  assert.deepEqual(plan.ops.map((o) => o.record), ['A mail 192.168.251.14', 'A mail 192.168.251.15']);
});

test('plan: an address another record holds is a conflict, never touched; the rest goes ahead', () => {
  const plan = planGroupDns(dnsView(LIVE), mail({ addresses: ['192.168.251.5', '192.168.251.11', '192.168.251.13'] }));
  assert.deepEqual(brief(plan.ops), ["delete <host ip='192.168.251.14'/>"]);
  assert.deepEqual(plan.conflicts.map((c) => c.ip), ['192.168.251.5', '192.168.251.11']);
  assert.match(plan.conflicts[0]!.holder, /"fixed", a storm_network host block/);
});

test('plan: another group\'s record at a wanted address is a conflict that names the group', () => {
  const view: DnsView = { ...dnsView(LIVE), hosts: [{ ip: '192.168.251.20', hostnames: ['web', 'web.storm-group.invalid'] }] };
  const plan = planGroupDns(view, mail({ addresses: ['192.168.251.20'], srv: [] }));
  assert.match(plan.conflicts[0]!.holder, /scaling group "web"'s record/);
});

test('plan: a group record edited by hand is written again whole', () => {
  const view: DnsView = { ...dnsView(LIVE), hosts: [{ ip: '192.168.251.13', hostnames: ['mail', 'extra', 'mail.storm-group.invalid'] }] };
  assert.deepEqual(brief(planGroupDns(view, mail({ addresses: ['192.168.251.13'] })).ops), [
    "delete <host ip='192.168.251.13'/>",
    "add-last <host ip='192.168.251.13'><hostname>mail</hostname><hostname>mail.storm-group.invalid</hostname></host>",
  ]);
});

test('plan: SRV is one record per service at NAME.DOMAIN; a new port deletes the old one without its port (libvirt matches no port)', () => {
  const plan = planGroupDns(dnsView(LIVE), mail({ srv: [{ service: 'smtp', protocol: 'tcp', port: 587 }, { service: 'imap', protocol: 'tcp', port: 143 }] }));
  assert.deepEqual(brief(plan.ops), [
    "delete <srv service='smtp' protocol='tcp' domain='mail.storm.internal' target='mail.storm.internal'/>",
    "add-last <srv service='smtp' protocol='tcp' domain='mail.storm.internal' target='mail.storm.internal' port='587'/>",
    "add-last <srv service='imap' protocol='tcp' domain='mail.storm.internal' target='mail.storm.internal' port='143'/>",
  ]);
  assert.deepEqual(plan.ops.map((o) => o.record), [
    'SRV _smtp._tcp.mail.storm.internal mail.storm.internal:25',
    'SRV _smtp._tcp.mail.storm.internal mail.storm.internal:587',
    'SRV _imap._tcp.mail.storm.internal mail.storm.internal:143',
  ]);
});

test('plan: no members and no services remove every record of the group and nothing else', () => {
  const plan = planGroupDns(dnsView(LIVE), { name: 'mail', addresses: [], mx: false, srv: [] });
  assert.deepEqual(brief(plan.ops), [
    "delete <host ip='192.168.251.13'/>",
    "delete <host ip='192.168.251.14'/>",
    "delete <srv service='smtp' protocol='tcp' domain='mail.storm.internal' target='mail.storm.internal'/>",
  ]);
  assert.deepEqual(planGroupDns(dnsView(LIVE), { name: 'web', addresses: [], mx: false, srv: [] }).ops, [], 'another group\'s name touches none of them');
});

test('plan: MX wanted on a network without selfmx is said, not planned', () => {
  const old = dnsView(LIVE.replace("<dnsmasq:option value='selfmx'/>", ''));
  assert.equal(planGroupDns(old, mail()).mxMissing, true);
  assert.equal(planGroupDns(old, mail({ mx: false })).mxMissing, false);
});

test('live and stored plans merge: a change both need is one call with both flags', () => {
  const del = (ip: string): DnsOp => ({ command: 'delete', section: 'dns-host', xml: `<host ip='${ip}'/>`, record: `A mail ${ip}` });
  const add = (ip: string): DnsOp => ({ command: 'add-last', section: 'dns-host', xml: `<host ip='${ip}'>…</host>`, record: `A mail ${ip}` });
  const steps = mergeScopes([add('10.0.0.1'), del('10.0.0.2')], [add('10.0.0.1'), add('10.0.0.3')]);
  assert.deepEqual(steps.map((s) => `${s.command} ${s.xml} ${s.flags}`), [
    "delete <host ip='10.0.0.2'/> --live",
    "add-last <host ip='10.0.0.1'>…</host> --live --config",
    "add-last <host ip='10.0.0.3'>…</host> --config",
  ]);
  assert.deepEqual(mergeScopes(null, [add('10.0.0.1')]).map((s) => s.flags), ['--config'], 'a stopped network: its definition only');
});

test('what is asked is checked before libvirt is asked anything, naming the group, network and server', async () => {
  const uri = 'qemu+tcp://192.0.2.1/system';
  const cases: [Partial<GroupDns>, RegExp][] = [
    [{ name: 'Mail.corp' }, /"Mail\.corp" is not a DNS name storm can give a group/],
    [{ addresses: ['192.168.251.300'] }, /"192\.168\.251\.300" is not an IPv4 address/],
    [{ srv: [{ service: '_smtp', protocol: 'tcp', port: 25 }] }, /SRV service "_smtp" is not a service name/],
    [{ srv: [{ service: 'smtp', protocol: 'tcp', port: 0 }] }, /SRV port 0 of service "smtp" is not a port/],
    [{ srv: [{ service: 'smtp', protocol: 'tcp', port: 25 }, { service: 'smtp', protocol: 'tcp', port: 587 }] }, /given twice: libvirt keeps one port per service and protocol/],
  ];
  for (const [over, says] of cases) {
    await assert.rejects(syncGroupDns(uri, 'lan', mail(over)), (err: Error) => {
      assert.ok(err instanceof GroupDnsError && err.problem === 'invalid', String(err));
      assert.match(err.message, says);
      assert.match(err.message, /on network "lan" \(server qemu\+tcp:\/\/192\.0\.2\.1\/system\)/);
      return true;
    });
  }
});

test('storm_network refuses a host block named like a group\'s mark (it would vanish from every refresh)', () => {
  const config = { id: null, server: 'blade1@qemu:///system', name: 'lan', cidr: '192.168.251.0/24', domain: null, active: null, bridge: null, host: [{ hostname: 'mail', ip: '192.168.251.5' }] };
  assert.deepEqual(validateBlock(network.schema.block, config), []);
  const [d, ...more] = validateBlock(network.schema.block, { ...config, host: [...config.host, { hostname: 'web.storm-group.invalid', ip: '192.168.251.6' }] });
  assert.deepEqual(more, []);
  assert.deepEqual(d!.path, [{ attribute: 'host' }, { index: 1 }, { attribute: 'hostname' }]);
  assert.match(d!.detail!, /marks the records storm's controller keeps for scaling groups/);
});
