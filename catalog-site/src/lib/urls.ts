// Where things are in the built tree. Paths are relative to the site base (no leading '/').

export const entryId = (name: string, version: string) => `${name}/${version}`;
export const appliancePath = (name: string) => `appliances/${name}/`;
export const versionAnchor = (version: string) => `v${version}`;
export const versionPath = (name: string, version: string) => `${appliancePath(name)}#${versionAnchor(version)}`;
export const definitionPath = (name: string, version: string) => `appliances/${name}/${version}/appliance.xml`;
export const FEED_PATH = 'rss.xml';
/**
 * Written by `storm sign --purpose feed` after the build, never by the build: pages link it only
 * when the publisher configured a key (STORM_CHANNEL_PUBLIC_KEY), the one setting that says a
 * signature will exist. Without a key there is nothing to sign with and the link would be a 404.
 */
export const FEED_SIGNATURE_PATH = 'rss.xml.sig';
export const PUBLIC_KEY_PATH = 'publisher.pub';
export const XSD_PATH = 'schema/appliance-definition.xsd';
export const JSON_SCHEMA_PATH = 'schema/appliance-definition.schema.json';

/** A site path under the configured base, for links in pages. */
export const href = (p: string) => `${import.meta.env.BASE_URL.replace(/\/?$/, '/')}${p}`;
