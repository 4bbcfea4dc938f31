// The paper's Figure 2, published as written: the catalog site derives what storm needs (the
// name from the folder, the image's sha256 and size from the file beside the definition), serves
// the image when its <url> is the channel's own, and the provider's feed reader takes the result.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseFeed } from '../../provider/src/channel/feed.ts';
import { REPO_DIR } from '../lib/terraform.ts';
import { buildSite } from '../lib/channel.ts';

const FIGURE_2 = path.join(REPO_DIR, 'provider/test/fixtures/appliances/paper/figure-2.xml');
const CHANNEL = 'http://127.0.0.1:8099/appliances/';

describe("catalog site: the paper's Figure 2 as written", () => {
  let work: string;
  let image: Buffer;
  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'storm-paper-'));
    const figure2 = await readFile(FIGURE_2, 'utf8');
    // A gzip'd tar in spirit: what matters here is the bytes the site hashes and serves.
    image = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(4096, 7)]);
    // As printed: the image's <url> is the paper's server; the publisher uploads it there.
    await mkdir(path.join(work, 'defs', 'webserv'), { recursive: true });
    await writeFile(path.join(work, 'defs', 'webserv', 'appliance.xml'), figure2);
    await writeFile(path.join(work, 'defs', 'webserv', 'webserv.tgz'), image);
    // The same appliance served by the channel itself.
    await mkdir(path.join(work, 'defs', 'mirror', '2.0'), { recursive: true });
    await writeFile(
      path.join(work, 'defs', 'mirror', '2.0', 'appliance.xml'),
      figure2
        .replace('<version>1.0.0-0</version>', '<version>2.0</version>')
        .replace('https://cs.colorado.edu/appliances/webserv.tgz', `${CHANNEL}images/mirror-2.0.tgz`)
        .replace(/\s*<sig>.*<\/sig>/, '')
        .replace(/\s*<dependency>.*<\/dependency>/g, ''),
    );
    await writeFile(path.join(work, 'defs', 'mirror', '2.0', 'mirror-2.0.tgz'), image);
  });
  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('builds; the feed names it by its folder, with the checksum, length and type of the file beside it; a channel URL image is served', async () => {
    const out = path.join(work, 'dist');
    const build = await buildSite(path.join(work, 'defs'), out, CHANNEL);
    assert.equal(build.code, 0, build.output);
    assert.match(build.output, /upload webserv\/webserv\.tgz → https:\/\/cs\.colorado\.edu\/appliances\/webserv\.tgz yourself/);
    assert.ok((await readFile(path.join(out, 'images', 'mirror-2.0.tgz'))).equals(image), 'the image is published where its <url> says');
    // Published byte for byte: no <name> or <sha256> written into it.
    assert.equal(await readFile(path.join(out, 'appliances', 'webserv', '1.0.0-0', 'appliance.xml'), 'utf8'), await readFile(FIGURE_2, 'utf8'));

    const feed = await parseFeed(await readFile(path.join(out, 'rss.xml'), 'utf8'));
    const sha256 = createHash('sha256').update(image).digest('hex');
    const byName = new Map(feed.items.map((i) => [i.name, i]));
    assert.deepEqual([...byName.keys()].sort(), ['mirror', 'webserv']);
    const webserv = byName.get('webserv')!;
    assert.equal(webserv.version, '1.0.0-0');
    assert.deepEqual(webserv.image, { url: 'https://cs.colorado.edu/appliances/webserv.tgz', sha256, sig: 'https://cs.colorado.edu/appliances/webserv.asc', sizeBytes: image.length });
    assert.equal(webserv.base, null, 'single layer: no storm:base');
    assert.deepEqual(webserv.dependencies, ['emailserv:1.0.0-0', 'firewall']);
    const xml = await readFile(path.join(out, 'rss.xml'), 'utf8');
    assert.match(xml, new RegExp(`<enclosure url="https://cs.colorado.edu/appliances/webserv.tgz" length="${image.length}" type="application/gzip"/>`));
  });
});
