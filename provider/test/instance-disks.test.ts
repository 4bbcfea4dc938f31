// An instance's swap and user disks as names and domain XML: the volume names that find them
// again (no record needed), the devices the guest sees them as, and the XML read back.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { domainXml, parseDomainXml, virtioDevice, type DomainSpec } from '../src/drivers/domain-xml.ts';
import { dataDiskPrefix, dataDiskVolumeName, isRecordName, parseDataDiskVolumeName } from '../src/host/names.ts';

describe('data disk names', () => {
  test('carry the type, the instance and the disk, and read back', () => {
    assert.equal(dataDiskVolumeName('mx1', 'user', 'hda2'), 'user-mx1_hda2');
    assert.deepEqual(parseDataDiskVolumeName('swap-web-1_hda3'), { type: 'swap', instance: 'web-1', disk: 'hda3' });
    assert.deepEqual(parseDataDiskVolumeName('user-a_b_c-d'), { type: 'user', instance: 'a', disk: 'b_c-d' });
    for (const other of ['inst-mx1', 'seed-mx1.iso', 'app-web-1.0', 'user-mx1', 'user-mx1_hda2.json']) assert.equal(parseDataDiskVolumeName(other), null, other);
  });

  test('an instance\'s prefix finds its disks and no other instance\'s', () => {
    // Instance names never hold "_": "web" and "web-1" cannot take each other's disks.
    assert.ok(dataDiskVolumeName('web-1', 'user', 'hda2').startsWith(dataDiskPrefix('web-1', 'user')));
    assert.ok(!dataDiskVolumeName('web-1', 'user', 'hda2').startsWith(dataDiskPrefix('web', 'user')));
    assert.ok(!dataDiskVolumeName('web', 'user', 'x_1').startsWith(dataDiskPrefix('web-1', 'user')));
    assert.ok(!isRecordName(dataDiskVolumeName('mx1', 'swap', 'json')), 'a disk named "json" is no record');
  });
});

describe('virtio devices', () => {
  test('are named as libvirt names them', () => {
    assert.deepEqual([0, 1, 2, 25, 26, 27, 51, 52, 701, 702].map(virtioDevice), ['vda', 'vdb', 'vdc', 'vdz', 'vdaa', 'vdab', 'vdaz', 'vdba', 'vdzz', 'vdaaa']);
  });
});

describe('an instance domain with swap and user disks', () => {
  const spec: DomainSpec = {
    name: 'web1',
    type: 'qemu',
    memoryMib: 512,
    vcpus: 1,
    diskPath: '/pool/inst-web1',
    seedPath: '/pool/seed-web1.iso',
    dataDisks: [
      { path: '/pool/swap-web1_hda3', serial: 'hda3' },
      { path: '/pool/user-web1_hda2', serial: 'hda2' },
    ],
    network: 'default',
    consoleLog: '/var/log/web1.log',
    metadata: { deployment: 'dep-web@blade1@qemu:///system', webpanel: '/upload.php' },
  };

  test('attaches them raw after the system disk and the seed, in order, named by serial', () => {
    const xml = domainXml(spec);
    assert.match(xml, /<source file='\/pool\/swap-web1_hda3'\/><target dev='vdc' bus='virtio'\/><serial>hda3<\/serial>/);
    assert.match(xml, /<driver name='qemu' type='raw'\/><source file='\/pool\/user-web1_hda2'\/><target dev='vdd' bus='virtio'\/><serial>hda2<\/serial>/);
    assert.ok(xml.indexOf("dev='vdb'") < xml.indexOf("dev='vdc'"));
  });

  test('reads them back, and not the system disk, the seed or a backing file', () => {
    const facts = parseDomainXml(domainXml(spec));
    assert.deepEqual(facts.dataDisks, [
      { device: 'vdc', path: '/pool/swap-web1_hda3', serial: 'hda3' },
      { device: 'vdd', path: '/pool/user-web1_hda2', serial: 'hda2' },
    ]);
    assert.equal(facts.diskPath, '/pool/inst-web1');
    assert.equal(facts.metadata.webpanel, '/upload.php');
  });

  test('as libvirt shows a running one (backing chains, aliases, 28 disks), in device order', () => {
    const many = Array.from({ length: 28 }, (_, i) => ({ path: `/pool/swap-web1_d${i}`, serial: `d${i}` }));
    const live = domainXml({ ...spec, dataDisks: many }).replace(
      "<source file='/pool/inst-web1'/>",
      "<source file='/pool/inst-web1' index='3'/><backingStore type='file' index='4'><format type='qcow2'/><source file='/pool/dep-web'/><backingStore/></backingStore>",
    );
    const disks = parseDomainXml(live).dataDisks;
    assert.equal(disks.length, 28);
    assert.deepEqual(disks.slice(22).map((d) => d.device), ['vdy', 'vdz', 'vdaa', 'vdab', 'vdac', 'vdad']);
    assert.equal(disks[27]!.serial, 'd27');
    assert.equal(parseDomainXml(live).diskPath, '/pool/inst-web1');
  });

  test('without them, the domain is what it was', () => {
    const { dataDisks: _, ...plain } = spec;
    assert.doesNotMatch(domainXml(plain), /vdc|<serial>/);
    assert.deepEqual(parseDomainXml(domainXml(plain)).dataDisks, []);
  });
});
