// The channel at scale: validating one definition of 1 MiB (bench/definition.ts), building the
// catalog site for 1000 generated appliances, and what a data source does with the resulting
// feed (fetch over HTTP, verify the signature, parse), for 1000 items. Figures only.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { glob, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseFeed } from '../provider/src/channel/feed.ts';
import { checkChannelFiles, type DefinitionFile } from '../provider/src/channel/publish.ts';
import { definitionFolders } from '../provider/src/channel/local-image.ts';
import { generateKeyPair, loadSecretKey, newFeedClaims, parsePublicKey, signFile, verifySignature } from '../provider/src/channel/signing.ts';
import { fetchBytes } from '../provider/src/drivers/channel.ts';
import { buildSite, serveStatic } from '../test/lib/channel.ts';
import { benchDefinition } from './definition.ts';
import { REPO_DIR } from '../test/lib/terraform.ts';

const COUNT = Number(process.env.BENCH_APPLIANCES ?? 1000);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export async function benchChannel(): Promise<void> {
  benchDefinition();
  const work = await mkdtemp(join(tmpdir(), 'storm-bench-channel-'));
  try {
    const defs = join(work, 'appliances');
    const www = join(work, 'www');
    execFileSync(process.execPath, ['--import', 'tsx', join(REPO_DIR, 'catalog-site/scripts/generate-appliances.ts'), String(COUNT), defs], { stdio: 'ignore' });
    // The channel's verdict alone (what `storm validate` and the build's loader ask), from bytes in memory.
    const files: DefinitionFile[] = [];
    for await (const f of glob('**/appliance.xml', { cwd: defs })) files.push({ file: f, bytes: await readFile(join(defs, f)), mtime: new Date(0), folders: definitionFolders(defs, join(defs, f)) });
    const verdicts: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const verdict = checkChannelFiles(files);
      verdicts.push(performance.now() - t0);
      if (verdict.failures.length) throw new Error(`generated definitions refused:\n${verdict.failures.slice(0, 5).join('\n')}`);
    }
    const { server, url } = await serveStatic(www);
    try {
      const built = await buildSite(defs, www, url);
      if (built.code !== 0) throw new Error(`site build failed:\n${built.output.slice(-2000)}`);
      const key = generateKeyPair('bench');
      await writeFile(join(www, 'rss.xml.sig'), (await signFile(loadSecretKey(key.secretKeyPem), join(www, 'rss.xml'), newFeedClaims(`${url}rss.xml`))).signature);
      const trusted = [parsePublicKey(key.publicKeyLine)];
      const feedBytes = (await readFile(join(www, 'rss.xml'))).length;
      const times: number[] = [];
      let items = 0;
      for (let i = 0; i < 7; i++) {
        const t0 = performance.now();
        const [xml, sig] = await Promise.all([fetchBytes(`${url}rss.xml`), fetchBytes(`${url}rss.xml.sig`)]);
        verifySignature(Buffer.from(sig!).toString('utf8'), trusted, { purpose: 'feed', sha256: createHash('sha256').update(xml!).digest('hex'), size: xml!.length, channel: `${url}rss.xml` });
        items = (await parseFeed(Buffer.from(xml!).toString('utf8'))).items.length;
        times.push(performance.now() - t0);
      }
      // Baseline: the same feed text read by rss-parser, the RSS library a Node user reaches for
      // (storm used it until its description regex proved quadratic), with storm's item fields.
      const { default: RssParser } = await import('rss-parser');
      const text = (await readFile(join(www, 'rss.xml'), 'utf8'));
      const ours: number[] = [];
      const theirs: number[] = [];
      for (let i = 0; i < 7; i++) {
        let t0 = performance.now();
        await parseFeed(text);
        ours.push(performance.now() - t0);
        t0 = performance.now();
        await new RssParser({ customFields: { item: ['storm:name', 'storm:version', 'storm:sha256', 'storm:base', 'storm:definition', 'storm:definition-sha256'] } }).parseString(text);
        theirs.push(performance.now() - t0);
      }
      console.log('');
      console.log(`channel of ${COUNT} appliances`);
      console.log(`  validating the ${COUNT} definitions (checkChannelFiles: each parsed, then duplicates and cycles)   median ${median(verdicts).toFixed(0)} ms of 5`);
      console.log(`  site build (astro build, ${COUNT} definitions validated)   ${built.seconds.toFixed(1)} s`);
      console.log(`  feed fetch + verify + parse (${items} items, ${(feedBytes / 1024).toFixed(0)} KiB)   median ${median(times).toFixed(0)} ms of 7`);
      console.log(`  feed parse alone: storm's reader median ${median(ours).toFixed(0)} ms; baseline rss-parser 3 (parseString, storm's fields as customFields) median ${median(theirs).toFixed(0)} ms; ratio ${(median(ours) / median(theirs)).toFixed(2)}×`);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
