// What a definition written to the paper's format leaves out, and storm derives: the appliance's
// name (the paper's definitions have none; storm's HCL needs one). Pure: a folder's name is given
// by whoever read the file (the site, `storm validate`), never looked up here.
import { NAME_PATTERN } from '../../rules.ts';

/** A name made of free text: "Simple Web Server" → "simple-web-server", "Éclair" → "eclair"; null when nothing is left. */
export function nameFromText(text: string): string | null {
  const slug = text
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return NAME_PATTERN.test(slug) ? slug : null;
}

/**
 * The name a definition's folders give it, nearest first: `webserv/appliance.xml`,
 * `webserv/1.0.0-0/appliance.xml` and `webserv-1.0.0-0/appliance.xml` all say webserv (a folder
 * named for the version is skipped, and a folder's `-VERSION` suffix dropped). Null when the
 * nearest folder that is not the version is not a name (then the label decides).
 */
export function nameFromFolders(folders: readonly string[], version: string | null): string | null {
  for (let i = folders.length - 1; i >= 0; i--) {
    let folder = folders[i]!;
    if (version !== null && folder === version) continue;
    if (version !== null && folder.endsWith(`-${version}`)) folder = folder.slice(0, -version.length - 1);
    return NAME_PATTERN.test(folder) ? folder : null;
  }
  return null;
}
