// Publishes the images publishers keep beside their definitions. After the build, each image
// whose definition's <url> lies under the channel's own URL is copied to that place in the
// built tree, so the channel serves it with the catalog; one whose <url> is on another server is
// the publisher's to upload there (the build says where). Copied, not rendered: an image may be
// gigabytes, and a page would hold it in memory.
import { copyFile, glob, lstat, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AstroIntegration } from 'astro';
import { parseApplianceDefinition } from '../../../provider/src/channel/definition.ts';
import { imageFileName } from '../../../provider/src/channel/publish.ts';
import { definitionFolders } from '../../../provider/src/channel/local-image.ts';

export interface ImageCopy {
  from: string;
  /** Path in the built tree, relative to it. */
  to: string;
}

/** Where each image beside a definition goes: copies into the tree, and uploads left to the publisher. */
export async function imagePlan(appliancesDir: string, channelUrl: URL): Promise<{ copies: ImageCopy[]; uploads: string[] }> {
  const copies: ImageCopy[] = [];
  const uploads: string[] = [];
  const names: string[] = [];
  for await (const f of glob('**/appliance.xml', { cwd: appliancesDir })) names.push(path.join(appliancesDir, f));
  for (const file of names.sort()) {
    const folders = definitionFolders(appliancesDir, file);
    const parsed = parseApplianceDefinition(await readFile(file), file, { folders });
    // An invalid definition stopped the build long before this runs.
    if (!parsed.ok) continue;
    const url = new URL(parsed.definition.image.url);
    const name = imageFileName(url.href);
    if (name === null) continue;
    const from = path.join(path.dirname(file), name);
    if (!(await lstat(from).catch(() => null))?.isFile()) continue;
    if (url.origin === channelUrl.origin && url.pathname.startsWith(channelUrl.pathname) && !url.search && !url.hash) {
      copies.push({ from, to: decodeURIComponent(url.pathname.slice(channelUrl.pathname.length)) });
    } else {
      uploads.push(`${path.relative(appliancesDir, from)} → ${url.href}`);
    }
  }
  return { copies, uploads };
}

export function publishImages(appliancesDir: () => string, channelUrl: () => URL): AstroIntegration {
  return {
    name: 'storm-publish-images',
    hooks: {
      'astro:build:done': async ({ dir, logger }) => {
        const out = path.resolve(fileURLToPath(dir));
        const { copies, uploads } = await imagePlan(appliancesDir(), channelUrl());
        for (const c of copies) {
          const to = path.resolve(out, c.to);
          if (!to.startsWith(out + path.sep)) throw new Error(`${c.from}: its <url> names ${c.to}, outside the built site; point <url> below the channel's URL`);
          // The site's own pages win; an image may not overwrite one.
          if (await lstat(to).catch(() => null)) throw new Error(`${c.from}: its <url> names ${c.to}, which the site itself writes; give the image another name`);
          await mkdir(path.dirname(to), { recursive: true });
          await copyFile(c.from, to);
        }
        if (copies.length) logger.info(`published ${copies.length} image(s) kept beside their definitions`);
        for (const u of uploads) logger.info(`upload ${u} yourself: its <url> is not under the channel's URL, so the channel lists it there but does not serve it`);
      },
    },
  };
}
