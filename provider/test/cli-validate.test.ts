// `storm validate`: the catalog site's verdict from the command line, exit status and all.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatProblems, parseApplianceDefinition } from '../src/channel/definition.ts';
import { validateCommand } from '../src/cli/validate.ts';

const fixtures = fileURLToPath(new URL('./fixtures/appliances/', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));

function captureIO(cwd: string) {
  let out = '';
  let err = '';
  return { io: { stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) }, cwd }, out: () => out, err: () => err };
}

describe('storm validate', () => {
  let work: string;
  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'storm-validate-'));
    for (const f of await readdir(path.join(fixtures, 'valid'))) {
      await mkdir(path.join(work, 'channel', f.replace('.xml', '')), { recursive: true });
      await writeFile(path.join(work, 'channel', f.replace('.xml', ''), 'appliance.xml'), await readFile(path.join(fixtures, 'valid', f)));
    }
  });
  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('a folder of valid definitions: exit 0, a summary, no problems', async () => {
    const c = captureIO(work);
    assert.equal(await validateCommand(['channel'], c.io), 0, c.err());
    assert.equal(c.out(), '3 definitions valid\n');
    assert.equal(c.err(), '');
  });

  test('files with problems: exit 1, the validator\'s lines, named as given', async () => {
    const c = captureIO(fixtures);
    assert.equal(await validateCommand(['invalid/many-errors.xml', 'corpus/unclosed-cpus.xml', 'valid/firewall.xml'], c.io), 1);
    for (const f of ['invalid/many-errors.xml', 'corpus/unclosed-cpus.xml']) {
      const r = parseApplianceDefinition(await readFile(path.join(fixtures, f)), f);
      assert.ok(!r.ok);
      assert.ok(c.err().includes(`${formatProblems(r.problems, f)}\n`), `${f}'s problems, as the build prints them:\n${c.err()}`);
    }
    assert.match(c.err(), /^corpus\/unclosed-cpus\.xml:14:5: \/: <cpus> is never closed/m);
    assert.equal(c.out(), '2 of 3 definitions with problems\n');
    const quiet = captureIO(fixtures);
    assert.equal(await validateCommand(['--quiet', 'corpus/latin1-undeclared.xml'], quiet.io), 1);
    assert.equal(quiet.out(), '');
    assert.match(quiet.err(), /^corpus\/latin1-undeclared\.xml:4:20: \/: byte 0xE9 is not UTF-8/);
  });

  test("the paper's Figure 2 as written: named by its folder, its checksum from the image beside it, or a problem saying what to do", async () => {
    const figure2 = await readFile(path.join(fixtures, 'paper', 'figure-2.xml'));
    const dir = path.join(work, 'paper', 'webserv');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'appliance.xml'), figure2);
    const missing = captureIO(work);
    assert.equal(await validateCommand(['paper'], missing.io), 1);
    assert.match(missing.err(), /^paper\/webserv\/appliance\.xml:7: \/appliance\/sha256: no <sha256>, and no image file "webserv\.tgz" beside the definition.*add <sha256>/m);
    await writeFile(path.join(dir, 'webserv.tgz'), Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]));
    const ok = captureIO(work);
    assert.equal(await validateCommand(['paper'], ok.io), 0, ok.err());
    // Warnings only: the dependencies live elsewhere.
    assert.match(ok.err(), /^warning: webserv 1\.0\.0-0 depends on emailserv/m);
    // A <sha256> that is not the file's is caught.
    await writeFile(path.join(dir, 'appliance.xml'), figure2.toString('utf8').replace('</url>', `</url>\n    <sha256>${'0'.repeat(64)}</sha256>`));
    const wrong = captureIO(work);
    assert.equal(await validateCommand(['paper'], wrong.io), 1);
    assert.match(wrong.err(), /\/appliance\/sha256: <sha256> is 0{64}, but paper\/webserv\/webserv\.tgz beside the definition has [0-9a-f]{64}/);
  });

  test('the set as a whole: a cycle, a duplicate, and a missing dependency as a warning', async () => {
    const firewall = await readFile(path.join(fixtures, 'valid', 'firewall.xml'), 'utf8');
    const dir = path.join(work, 'set');
    const put = async (rel: string, xml: string) => {
      await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await writeFile(path.join(dir, rel), xml);
    };
    const named = (name: string, deps: string[]) =>
      firewall.replace('<name>firewall</name>', `<name>${name}</name>`).replace('</appliance>', `${deps.map((d) => `  <dependency>${d}</dependency>\n`).join('')}</appliance>`);
    await put('a/appliance.xml', named('a', ['b', 'elsewhere']));
    await put('b/appliance.xml', named('b', ['a']));
    // Files are taken in name order: the second b is the duplicate.
    await put('z-b/appliance.xml', named('b', []));
    const c = captureIO(work);
    assert.equal(await validateCommand(['set'], c.io), 1);
    assert.match(c.err(), /^set\/a\/appliance\.xml:18: \/appliance\/dependency: dependency cycle: a 2\.1 → b 2\.1 → a 2\.1; /m);
    assert.match(c.err(), /^set\/z-b\/appliance\.xml:1: \/appliance\/version: b 2\.1 is also defined by set\/b\/appliance\.xml/m);
    assert.match(c.err(), /^warning: a 2\.1 depends on elsewhere, which this channel does not publish$/m);
  });

  test('usage: no arguments, a path that does not exist, --help', async () => {
    const none = captureIO(work);
    assert.equal(await validateCommand([], none.io), 2);
    assert.match(none.err(), /Usage: storm validate/);
    const missing = captureIO(work);
    assert.equal(await validateCommand(['nowhere'], missing.io), 2);
    assert.match(missing.err(), /nowhere does not exist/);
    const help = captureIO(work);
    assert.equal(await validateCommand(['--help'], help.io), 0);
    assert.match(help.out(), /^Usage: storm validate /);
    assert.match(help.out(), /Exit status:/);
  });

  test('storm --help lists it, and the executable runs it', async () => {
    const run = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        const child = execFile(process.execPath, ['--import', 'tsx', 'provider/src/main.ts', ...args], { cwd: REPO, timeout: 30_000 }, (_e, stdout, stderr) =>
          resolve({ code: child.exitCode, stdout, stderr }),
        );
      });
    assert.match((await run(['--help'])).stdout, /^ {2}validate +check appliance definitions/m);
    const ok = await run(['validate', ...['emailserv', 'firewall', 'webserv'].map((n) => `provider/test/fixtures/appliances/valid/${n}.xml`)]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, '3 definitions valid\n');
    const bad = await run(['validate', 'provider/test/fixtures/appliances/corpus/version-index-html.xml']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /version-index-html\.xml:6:12: \/appliance\/version: version "index.html" is reserved/);
  });
});
