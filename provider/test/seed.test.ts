import { describe, it, before, after } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expandTemplate, templateVariables } from '../src/drivers/seed/template.ts';
import { nocloudSeed, SeedFileError } from '../src/drivers/seed/nocloud.ts';
import type { SeedFile } from '../src/drivers/seed/nocloud.ts';
import { buildIso9660, IsoBuildError } from '../src/drivers/seed/iso9660.ts';

const has = (cmd: string, args: string[]): boolean => {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.error === undefined;
};
const hasIsoinfo = has('isoinfo', ['-version']);
const hasIsovfy = has('isovfy', ['-version']);
const hasBlkid = has('blkid', ['-V']);
const noIsoinfo = hasIsoinfo ? false : 'isoinfo not installed (apt-get install genisoimage)';

// cloud-init parses user-data with PyYAML, so that is the parser the YAML output must satisfy.
const pyyaml = ['python3', '/usr/bin/python3'].find(
  (py) => spawnSync(py, ['-c', 'import yaml'], { stdio: 'ignore' }).status === 0,
);
const noPyyaml = pyyaml !== undefined ? false : 'PyYAML not available (apt-get install python3-yaml)';

function loadYaml(text: string): unknown {
  const r = spawnSync(pyyaml as string, ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin.buffer), sys.stdout)'], {
    input: Buffer.from(text, 'utf8'),
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `PyYAML rejected:\n${text}\n${r.stderr}`);
  return JSON.parse(r.stdout) as unknown;
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

function runBytes(cmd: string, args: string[]): Buffer {
  const r = spawnSync(cmd, args);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed: ${r.stderr.toString()}`);
  return r.stdout;
}

const enc = new TextEncoder();

describe('expandTemplate', () => {
  it('replaces ${name} and inserts values verbatim', () => {
    assert.deepEqual(expandTemplate('host=${host} port=${PORT_1}${_x}', { host: 'db', PORT_1: '5432', _x: '' }), {
      text: 'host=db port=5432',
    });
    // a value that looks like a reference is not expanded a second time
    assert.deepEqual(expandTemplate('${a}', { a: '${b} $${c}', b: 'no' }), { text: '${b} $${c}' });
  });

  it('turns $${ into a literal ${ and never looks up the escaped name', () => {
    assert.deepEqual(expandTemplate('echo $${HOME} $${name}', {}), { text: 'echo ${HOME} ${name}' });
    // left to right, as HCL does: "$" then "$${" -> "$${HOME}"
    assert.deepEqual(expandTemplate('$$${HOME}', {}), { text: '$${HOME}' });
    assert.deepEqual(expandTemplate('$${a}${a}', { a: 'x' }), { text: '${a}x' });
  });

  it('leaves every other dollar form alone', () => {
    const text = 'cost $5, $a, $$, ${x:-y}, ${#arr[@]}, ${ a }, ${}, ${a.b}, ${1x}, unterminated ${a';
    assert.deepEqual(expandTemplate(text, { a: 'A', x: 'X' }), { text });
  });

  it('reports all missing names, unique, in order of first use', () => {
    assert.deepEqual(expandTemplate('${b} ${a} ${b} ${c} ${a} $${d}', { a: '1' }), { missing: ['b', 'c'] });
  });

  it('does not find names on Object.prototype', () => {
    assert.deepEqual(expandTemplate('${constructor}${toString}${__proto__}', {}), {
      missing: ['constructor', 'toString', '__proto__'],
    });
  });

  it('lists the variables a template uses, without escaped ones', () => {
    assert.deepEqual(templateVariables('${b}${a}$${c} ${b} ${x:-1} ${d}'), ['b', 'a', 'd']);
    assert.deepEqual(templateVariables('nothing here'), []);
  });
});

describe('nocloudSeed YAML', () => {
  it('writes meta-data and a #cloud-config user-data', () => {
    const s = nocloudSeed({
      instanceId: 'i-0123',
      hostname: 'web-01',
      files: [{ path: '/etc/motd', content: 'hello\nworld\n' }],
    });
    assert.equal(s.metaData, 'instance-id: i-0123\nlocal-hostname: web-01\n');
    assert.equal(
      s.userData,
      [
        '#cloud-config',
        'hostname: web-01',
        'write_files:',
        '  - path: /etc/motd',
        '    permissions: "0644"',
        '    content: |',
        '      hello',
        '      world',
        '',
      ].join('\n'),
    );
  });

  it('leaves out write_files when there are no files', () => {
    assert.equal(nocloudSeed({ instanceId: 'i', hostname: 'h', files: [] }).userData, '#cloud-config\nhostname: h\n');
  });

  const tricky: [string, string][] = [
    ['multi-line', 'line 1\nline 2\nline 3\n'],
    ['no trailing newline', 'a\nb'],
    ['several trailing newlines', 'a\n\n\n'],
    ['only newlines', '\n\n'],
    ['one newline', '\n'],
    ['empty', ''],
    ['leading spaces', '  indented\nnot\n'],
    ['leading blank lines then indent', '\n\n    deep\n  less\n'],
    ['yaml syntax inside', 'key: value\n- item\n# comment\n---\n...\n{ "a": [1, 2] }\n&anchor *alias !tag |\n'],
    ['colon-space and hash', 'a: b #c\n'],
    ['unicode', 'Grüße 日本語 😀 é\n'],
    ['tabs', '\tstart\nmid\tdle\n'],
    ['trailing spaces', 'x  \ny\n'],
    ['whitespace-only line', 'a\n   \nb\n'],
    ['CRLF', 'a\r\nb\r\n'],
    ['control characters', 'bell\u0007 esc\u001b del\u007f\n'],
    ['unicode line separators', 'a\u2028b\u0085c\n'],
    ['BOM', '\ufeffbom\n'],
    ['shell script', '#!/bin/sh\nset -eu\necho "${HOME}" \'$x\' `date` >&2\n'],
    ['no newline with leading space', ' x'],
  ];

  it('round-trips tricky file content through PyYAML', { skip: noPyyaml }, () => {
    const files: SeedFile[] = tricky.map(([name, content], i) => ({ path: `/tmp/f${i}-${name.replace(/ /g, '_')}`, content }));
    // once in this order and once reversed, so every case is both followed by another item and last
    for (const list of [files, [...files].reverse()]) {
      const { userData } = nocloudSeed({ instanceId: 'i', hostname: 'h', files: list });
      assert.ok(userData.startsWith('#cloud-config\n'));
      const doc = loadYaml(userData) as { hostname: string; write_files: Record<string, string>[] };
      assert.equal(doc.hostname, 'h');
      assert.equal(doc.write_files.length, list.length);
      doc.write_files.forEach((item, i) => {
        const want = list[i] as SeedFile;
        assert.equal(item['path'], want.path);
        assert.equal(item['permissions'], '0644');
        const got = item['encoding'] === 'b64' ? Buffer.from(item['content'] as string, 'base64').toString('utf8') : item['content'];
        assert.equal(got, want.content, `content of ${want.path}`);
      });
    }
  });

  it('uses a literal block where it is exact and base64 where it is not', () => {
    const item = (content: string): string =>
      nocloudSeed({ instanceId: 'i', hostname: 'h', files: [{ path: '/f', content }] }).userData.split('write_files:\n')[1] as string;
    assert.match(item('a\nb\n'), /content: \|\n {6}a\n {6}b\n$/);
    assert.match(item('a'), /content: \|-\n {6}a\n$/);
    assert.match(item('a\n\n'), /content: \|\+\n {6}a\n\n$/);
    assert.match(item(' a\n'), /content: \|2\n {7}a\n$/);
    for (const content of ['x \n', 'a\r\n', 'a\u0000b', '\u0085']) {
      const out = item(content);
      assert.match(out, /encoding: b64\n {4}content: [A-Za-z0-9+/=]+\n$/);
      assert.equal(Buffer.from(/content: (\S+)/.exec(out)?.[1] as string, 'base64').toString('utf8'), content);
    }
  });

  it('quotes identifiers only when YAML would misread them', { skip: noPyyaml }, () => {
    const values = ['web-01', 'yes', 'No', 'null', '1234', '0644', '1e3', 'a: b', 'x #y', '"quoted"', "it's", 'back\\slash', 'tab\there', 'Grüße', '-dash', '~', '*'];
    for (const v of values) {
      const s = nocloudSeed({ instanceId: v, hostname: v, files: [] });
      assert.deepEqual(loadYaml(s.metaData), { 'instance-id': v, 'local-hostname': v }, v);
      assert.deepEqual(loadYaml(s.userData), { hostname: v }, v);
    }
    assert.match(nocloudSeed({ instanceId: 'i-1', hostname: 'web-01', files: [] }).metaData, /^instance-id: i-1$/m);
  });

  it('keeps given permissions as a string and rejects non-octal ones', { skip: noPyyaml }, () => {
    const s = nocloudSeed({ instanceId: 'i', hostname: 'h', files: [{ path: '/x', content: 'x', permissions: '0600' }, { path: '/y', content: 'y', permissions: '755' }] });
    const doc = loadYaml(s.userData) as { write_files: { permissions: unknown }[] };
    assert.deepEqual(doc.write_files.map((f) => f.permissions), ['0600', '755']);
    assert.throws(
      () => nocloudSeed({ instanceId: 'i', hostname: 'h', files: [{ path: '/x', content: '', permissions: 'rw-r--r--' }] }),
      (e: unknown) => e instanceof SeedFileError && e.path === '/x' && /octal/.test(e.message),
    );
  });

  it('rejects relative paths, .. segments, NUL and duplicates with the path', () => {
    const bad: [string, RegExp][] = [
      ['etc/motd', /absolute/],
      ['', /absolute/],
      ['/etc/../shadow', /\.\./],
      ['/..', /\.\./],
      ['/etc/..', /\.\./],
      ['/etc/mo\0td', /NUL/],
    ];
    for (const [path, reason] of bad) {
      assert.throws(
        () => nocloudSeed({ instanceId: 'i', hostname: 'h', files: [{ path, content: '' }] }),
        (e: unknown) => e instanceof SeedFileError && e.path === path && reason.test(e.reason),
        JSON.stringify(path),
      );
    }
    assert.throws(
      () => nocloudSeed({ instanceId: 'i', hostname: 'h', files: [{ path: '/a', content: '' }, { path: '/a', content: 'x' }] }),
      (e: unknown) => e instanceof SeedFileError && e.path === '/a',
    );
    // names that merely contain dots are fine
    nocloudSeed({ instanceId: 'i', hostname: 'h', files: [{ path: '/etc/..d/...', content: '' }, { path: '/a/./b', content: '' }] });
  });
});

describe('buildIso9660', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'storm-seed-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const save = (name: string, image: Uint8Array): string => {
    const file = join(dir, name);
    writeFileSync(file, image);
    return file;
  };
  const seedFiles = () => [
    { name: 'meta-data', data: enc.encode('instance-id: i-1\nlocal-hostname: web-01\n') },
    { name: 'user-data', data: enc.encode('#cloud-config\nhostname: web-01\n') },
  ];

  it('is deterministic, and the timestamp is the only clock it reads', () => {
    const a = buildIso9660({ volumeId: 'cidata', files: seedFiles() });
    const b = buildIso9660({ volumeId: 'cidata', files: seedFiles() });
    assert.deepEqual(Buffer.from(a), Buffer.from(b));
    const when = new Date(Date.UTC(2024, 1, 29, 12, 34, 56));
    const c = buildIso9660({ volumeId: 'cidata', files: seedFiles(), timestamp: when });
    assert.notDeepEqual(Buffer.from(a), Buffer.from(c));
    assert.deepEqual(Buffer.from(c), Buffer.from(buildIso9660({ volumeId: 'cidata', files: seedFiles(), timestamp: when })));
    assert.equal(Buffer.from(c).subarray(16 * 2048 + 813, 16 * 2048 + 829).toString('latin1'), '2024022912345600');
  });

  it('lays out 2048-byte sectors: empty system area, PVD, Joliet SVD, terminator', () => {
    const img = Buffer.from(buildIso9660({ volumeId: 'cidata', files: seedFiles() }));
    assert.equal(img.length % 2048, 0);
    assert.ok(img.subarray(0, 16 * 2048).every((x) => x === 0));
    assert.deepEqual([img[16 * 2048], img.subarray(16 * 2048 + 1, 16 * 2048 + 6).toString('latin1')], [1, 'CD001']);
    assert.deepEqual([img[17 * 2048], img.subarray(17 * 2048 + 1, 17 * 2048 + 6).toString('latin1')], [2, 'CD001']);
    assert.deepEqual([img[18 * 2048], img.subarray(18 * 2048 + 1, 18 * 2048 + 6).toString('latin1')], [255, 'CD001']);
    assert.equal(img.subarray(16 * 2048 + 40, 16 * 2048 + 72).toString('latin1'), 'CIDATA'.padEnd(32, ' '));
    assert.equal(img.readUInt32LE(16 * 2048 + 80) * 2048, img.length);
    assert.equal(img.readUInt32BE(16 * 2048 + 84) * 2048, img.length);
  });

  it('is read by isoinfo: volume id, level-1 and Joliet names, content', { skip: noIsoinfo }, () => {
    const file = save('seed.iso', buildIso9660({ volumeId: 'cidata', files: seedFiles() }));
    const d = run('isoinfo', ['-d', '-i', file]);
    assert.match(d, /^Volume id: CIDATA$/m);
    assert.match(d, /^Joliet with UCS level 3 found$/m);
    assert.match(d, /^Logical block size is: 2048$/m);
    const joliet = run('isoinfo', ['-J', '-l', '-i', file]);
    assert.match(joliet, / meta-data \n/);
    assert.match(joliet, / user-data \n/);
    const level1 = run('isoinfo', ['-l', '-i', file]);
    assert.match(level1, / META_DAT\.;1 \n/);
    assert.match(level1, / USER_DAT\.;1 \n/);
    for (const f of seedFiles()) {
      assert.deepEqual(runBytes('isoinfo', ['-J', '-x', `/${f.name}`, '-i', file]), Buffer.from(f.data));
    }
    if (hasIsovfy) assert.match(run('isovfy', [file]), /No errors found/);
  });

  it('is labelled cidata for blkid', { skip: hasBlkid ? false : 'blkid not installed' }, () => {
    const file = save('label.iso', buildIso9660({ volumeId: 'cidata', files: seedFiles() }));
    const tags = run('blkid', ['-o', 'export', file]).split('\n');
    assert.ok(tags.includes('LABEL=cidata'), tags.join(' '));
    assert.ok(tags.includes('TYPE=iso9660'), tags.join(' '));
  });

  it('handles many files, long names, empty and multi-sector files', { skip: noIsoinfo }, () => {
    const files = Array.from({ length: 60 }, (_, i) => ({
      name: `file-${String(i).padStart(2, '0')}-${'x'.repeat(50)}.conf`,
      data: enc.encode(`file ${i}\n`),
    }));
    const big = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7) & 0xff);
    files.push({ name: 'big.bin', data: big }, { name: 'empty', data: new Uint8Array() });
    // all three map to the level-1 name USER_DAT
    for (const name of ['user-data', 'user_data', 'User-Data']) files.push({ name, data: enc.encode(name) });
    const file = save('many.iso', buildIso9660({ volumeId: 'cidata', files }));
    const joliet = run('isoinfo', ['-J', '-l', '-i', file]);
    for (const f of files) assert.ok(joliet.includes(` ${f.name} \n`), f.name);
    // the Joliet root no longer fits one sector
    const rootSize = Number(/^d[-rwx]+(?: +\d+){3} +(\d+) .* \. $/m.exec(joliet)?.[1]);
    assert.ok(rootSize > 2048 && rootSize % 2048 === 0, String(rootSize));
    const level1 = [...run('isoinfo', ['-l', '-i', file]).matchAll(/ ([A-Z0-9_]+\.[A-Z0-9_]*;1) $/gm)].map((m) => m[1]);
    assert.equal(new Set(level1).size, files.length);
    assert.deepEqual(runBytes('isoinfo', ['-J', '-x', '/big.bin', '-i', file]), Buffer.from(big));
    assert.deepEqual(runBytes('isoinfo', ['-J', '-x', '/empty', '-i', file]), Buffer.alloc(0));
    assert.deepEqual(runBytes('isoinfo', ['-J', '-x', '/User-Data', '-i', file]), Buffer.from('User-Data'));
    assert.deepEqual(runBytes('isoinfo', ['-J', '-x', `/${files[42]?.name}`, '-i', file]), Buffer.from('file 42\n'));
    if (hasIsovfy) assert.match(run('isovfy', [file]), /No errors found/);
  });

  it('rejects names and labels it cannot represent', () => {
    const bad = (volumeId: string, names: string[]): void => {
      assert.throws(() => buildIso9660({ volumeId, files: names.map((name) => ({ name, data: new Uint8Array() })) }), IsoBuildError);
    };
    bad('ci data', []);
    bad('', []);
    bad('a-very-long-volume-label', []);
    bad('cidata', ['a/b']);
    bad('cidata', ['a;1']);
    bad('cidata', ['']);
    bad('cidata', ['..']);
    bad('cidata', ['same', 'same']);
    bad('cidata', ['x'.repeat(65)]);
  });

  it('mounts as iso9660 with the real names', async (t: TestContext) => {
    if (process.getuid?.() !== 0) return t.skip('needs root for mount -o loop');
    const file = save('mount.iso', nocloudSeed({ instanceId: 'i-m', hostname: 'm', files: [] }).iso);
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const m = spawnSync('mount', ['-t', 'iso9660', '-o', 'loop,ro', file, mnt], { encoding: 'utf8' });
    if (m.status !== 0) return t.skip(`mount failed here: ${m.stderr.trim().split('\n')[0]}`);
    try {
      assert.deepEqual(readdirSync(mnt).sort(), ['meta-data', 'user-data']);
      assert.equal(readFileSync(join(mnt, 'meta-data'), 'utf8'), 'instance-id: i-m\nlocal-hostname: m\n');
      assert.ok(statSync(join(mnt, 'user-data')).isFile());
    } finally {
      spawnSync('umount', [mnt]);
    }
  });
});

describe('nocloudSeed ISO', () => {
  it('carries exactly the meta-data and user-data it returns', { skip: noIsoinfo }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'storm-seed-'));
    try {
      const seed = nocloudSeed({
        instanceId: 'i-abc',
        hostname: 'appliance',
        files: [{ path: '/etc/app/config.yaml', content: 'listen: 0.0.0.0:80\n', permissions: '0600' }],
      });
      const file = join(dir, 'seed.iso');
      writeFileSync(file, seed.iso);
      assert.match(run('isoinfo', ['-d', '-i', file]), /^Volume id: CIDATA$/m);
      assert.equal(runBytes('isoinfo', ['-J', '-x', '/meta-data', '-i', file]).toString('utf8'), seed.metaData);
      assert.equal(runBytes('isoinfo', ['-J', '-x', '/user-data', '-i', file]).toString('utf8'), seed.userData);
      assert.deepEqual(Buffer.from(seed.iso), Buffer.from(nocloudSeed({
        instanceId: 'i-abc',
        hostname: 'appliance',
        files: [{ path: '/etc/app/config.yaml', content: 'listen: 0.0.0.0:80\n', permissions: '0600' }],
      }).iso));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
