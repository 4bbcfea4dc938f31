// Feeds that cannot be rolled back, frozen or swapped: the v2 statement, the freshness and
// rotation rules, and the provider's refusals as the user reads them (readChannel with a real
// HTTP server and cache directory), plus the publisher's commands.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { FeedExpiredError, FeedRollbackError, checkFeedFreshness, type SeenFeed } from '../src/channel/freshness.ts';
import { RotationError, makeRotation, rotationUrl, verifyRotation } from '../src/channel/rotation.ts';
import {
  LegacySignatureError,
  MalformedSignatureError,
  SigningError,
  UnknownKeyError,
  WrongChannelError,
  channelName,
  formatPublicKey,
  generateKeyPair,
  loadSecretKey,
  newFeedClaims,
  parseDuration,
  parsePublicKey,
  parseSignature,
  signStatement,
  verifyFeedSignature,
  type FeedStatement,
  type PublicKey,
  type SecretKey,
} from '../src/channel/signing.ts';
import { rotateKeyCommand, signCommand, verifyCommand, type KeysCommandIO } from '../src/cli/keys.ts';
import type { ResourceContext } from '../src/contract.ts';
import { readTrustState, trustStatePath } from '../src/drivers/channel.ts';
import { HostSession } from '../src/host/session.ts';
import { DiagnosticError, attr, type Diagnostic } from '../src/protocol/diagnostics.ts';
import { readChannel } from '../src/resources/channel-access.ts';

const EMPTY_SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const FIXED_PEM = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIKxo4eiOlpTMkwYobsdSW8SDkvimDZ0MDwhcWLR1GXUp
-----END PRIVATE KEY-----
`;
// Cross-checked with `openssl pkeyutl -sign -rawin -inkey key.pem -in statement` over the
// canonical statement (the lines below without key-id and signature).
const FIXED_FEED_SIG = `storm-signature-v2
key-id: b2a16655e4cbdb26
purpose: feed
name: rss.xml
sha256: ${EMPTY_SHA}
size: 0
channel: https://appliances.example.org/rss.xml
version: 1717243200000
expires: 2024-06-08T12:00:00.000Z
signature: XvkJqRDj0TfotPgSRGrZoRDBC4Bt1fuTkkrp85a64P9Bh3EKacyfYppIRo0ezxgDLmum9tn5AWbfkGH588ytDg==
`;
const FIXED_FEED: FeedStatement = {
  purpose: 'feed',
  name: 'rss.xml',
  sha256: EMPTY_SHA,
  size: 0,
  channel: 'https://appliances.example.org/rss.xml',
  version: 1717243200000,
  expires: 1717848000000,
};
const DAY = 86_400_000;
/** `text` matched literally inside a RegExp. */
const lit = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const sha = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

function newKey(comment?: string): { secret: SecretKey; pub: PublicKey; line: string } {
  const pair = generateKeyPair(comment);
  return { secret: loadSecretKey(pair.secretKeyPem), pub: parsePublicKey(pair.publicKeyLine), line: pair.publicKeyLine };
}

function withField(sig: string, field: string, value: string | null): string {
  const re = new RegExp(`^${field}: .*\\n`, 'm');
  assert.match(sig, re);
  return sig.replace(re, value === null ? '' : `${field}: ${value}\n`);
}

function feedStatement(xml: string, over: Partial<FeedStatement> = {}): FeedStatement {
  return { purpose: 'feed', name: 'rss.xml', sha256: sha(xml), size: Buffer.byteLength(xml), channel: 'https://appliances.example.org/rss.xml', version: Date.now(), expires: Date.now() + DAY, ...over };
}

describe('the v2 feed statement', () => {
  const signer = newKey('signer');

  test('the fixed key gives the fixed feed signature, and it verifies', () => {
    const key = loadSecretKey(FIXED_PEM);
    assert.equal(signStatement(key, FIXED_FEED), FIXED_FEED_SIG);
    const v = verifyFeedSignature(FIXED_FEED_SIG, [key.publicKey], { sha256: EMPTY_SHA, size: 0, channel: 'https://appliances.example.org/rss.xml' });
    assert.deepEqual(v.statement, FIXED_FEED);
  });

  test('channel, version and expiry round-trip through the .sig; any spelling of the channel URL verifies', () => {
    const st = feedStatement('<rss/>', { channel: 'HTTPS://Appliances.Example.org:443/rss.xml#top' });
    const sig = signStatement(signer.secret, st);
    const parsed = parseSignature(sig);
    assert.equal(parsed.purpose, 'feed');
    assert.ok(parsed.purpose === 'feed' && parsed.channel === 'https://appliances.example.org/rss.xml' && parsed.version === st.version && parsed.expires === st.expires);
    for (const spelling of ['https://appliances.example.org/rss.xml', 'https://APPLIANCES.example.org:443/rss.xml']) {
      assert.equal(verifyFeedSignature(sig, [signer.pub], { sha256: st.sha256, channel: spelling }).statement.channel, 'https://appliances.example.org/rss.xml');
    }
    // A path names the same channel as its file: URL.
    assert.equal(channelName('/srv/channel/rss.xml'), 'file:///srv/channel/rss.xml');
  });

  test('a feed signed for another channel is a WrongChannelError naming both', () => {
    const st = feedStatement('<rss/>');
    const sig = signStatement(signer.secret, st);
    assert.throws(
      () => verifyFeedSignature(sig, [signer.pub], { sha256: st.sha256, channel: 'https://appliances.example.org/testing/rss.xml' }),
      (e: unknown) =>
        e instanceof WrongChannelError &&
        e.signed === 'https://appliances.example.org/rss.xml' &&
        e.expected === 'https://appliances.example.org/testing/rss.xml' &&
        /valid, but for channel https:\/\/appliances\.example\.org\/rss\.xml, not https:\/\/appliances\.example\.org\/testing\/rss\.xml/.test(e.message),
    );
    // Editing the channel line to match is a bad signature, not a pass.
    assert.throws(() => verifyFeedSignature(withField(sig, 'channel', 'https://appliances.example.org/testing/rss.xml'), [signer.pub], { sha256: st.sha256, channel: 'https://appliances.example.org/testing/rss.xml' }), /does not verify with key/);
  });

  test('an old-format (v1) feed signature is refused with advice to re-sign, before any key is tried', () => {
    const v1 = `storm-signature-v1\nkey-id: ${signer.pub.keyId}\npurpose: feed\nname: rss.xml\nsha256: ${EMPTY_SHA}\nsize: 0\nsignature: ${'A'.repeat(86)}==\n`;
    assert.throws(
      () => verifyFeedSignature(v1, [], { sha256: EMPTY_SHA }),
      (e: unknown) => e instanceof LegacySignatureError && /storm-signature-v1 feed signature .* names no channel, version or expiry/.test(e.message) && /`storm sign --purpose feed rss\.xml`/.test(e.message),
    );
  });

  test('malformed v2 signatures say what is wrong', () => {
    const sig = signStatement(signer.secret, feedStatement('<rss/>'));
    const rotationSig = signStatement(signer.secret, { purpose: 'key-rotation', name: 'r.json', sha256: EMPTY_SHA, size: 0, channel: 'https://a.example/rss.xml', version: 5 });
    const cases: [string, RegExp][] = [
      [withField(sig, 'channel', null), /no "channel:" line/],
      [withField(sig, 'version', null), /no "version:" line/],
      [withField(sig, 'expires', null), /no "expires:" line/],
      [withField(sig, 'channel', 'HTTPS://appliances.example.org/rss.xml'), /not written as storm writes it \("https:\/\/appliances\.example\.org\/rss\.xml"\)/],
      [withField(sig, 'channel', 'ftp://appliances.example.org/rss.xml'), /not an http\(s\) or file URL/],
      [withField(sig, 'channel', 'rss.xml'), /is not a URL/],
      [withField(sig, 'channel', 'https://user:pw@appliances.example.org/rss.xml'), /user name or password/],
      [withField(sig, 'version', '0'), /version must be at least 1/],
      [withField(sig, 'version', '017'), /version "017" must be a whole number/],
      [withField(sig, 'version', '-3'), /must be a whole number/],
      [withField(sig, 'expires', '2024-06-08T12:00:00Z'), /expires "2024-06-08T12:00:00Z" must be a UTC time written like/],
      [withField(sig, 'expires', 'tomorrow'), /must be a UTC time/],
      [`${rotationSig}expires: 2024-06-08T12:00:00.000Z\n`, /a rotation does not expire/],
    ];
    for (const [text, message] of cases) {
      assert.throws(() => parseSignature(text), (e: unknown) => e instanceof MalformedSignatureError && message.test(e.message), String(message));
    }
  });

  test('newFeedClaims: the signing time as version, 7 days by default, whole seconds, above the signature it replaces', () => {
    const now = 1717243200123;
    const c = newFeedClaims('https://a.example/rss.xml', { now });
    assert.deepEqual(c, { purpose: 'feed', channel: 'https://a.example/rss.xml', version: now, expires: now - 123 + 7 * DAY, clockBehind: false });
    const behind = newFeedClaims('https://a.example/rss.xml', { now, previousVersion: now + 5000 });
    assert.equal(behind.version, now + 5001);
    assert.ok(behind.clockBehind);
    assert.equal(newFeedClaims('https://a.example/rss.xml', { now, lifetimeMs: parseDuration('36h') }).expires, now - 123 + 1.5 * DAY);
    assert.throws(() => newFeedClaims('https://a.example/rss.xml', { lifetimeMs: 400 * DAY }), /at most 366 days/);
    assert.throws(() => newFeedClaims('https://a.example/rss.xml', { lifetimeMs: 10 }), /at least a second/);
    assert.throws(() => newFeedClaims('nowhere', {}), SigningError);
    assert.deepEqual(['30s', '90m', '12h', '7d', '2w'].map(parseDuration), [30_000, 5_400_000, 43_200_000, 7 * DAY, 14 * DAY]);
    for (const bad of ['7', 'd', '1.5d', '7 days', '-1d']) assert.throws(() => parseDuration(bad), /is not a duration/, bad);
  });
});

describe('freshness', () => {
  const st = feedStatement('<rss>v2</rss>', { version: 2000, expires: 10_000 });
  const seen = (version: number, sha256 = st.sha256): SeenFeed => ({ version, sha256, seenAt: 1500 });

  test('a feed newer than, or the same as, the newest seen, and not expired, passes', () => {
    checkFeedFreshness(st, 'k', undefined, 5000);
    checkFeedFreshness(st, 'k', seen(1999, 'other'), 5000);
    checkFeedFreshness(st, 'k', seen(2000), 5000);
  });

  test('an older feed, or another feed with the same version, is a FeedRollbackError', () => {
    assert.throws(() => checkFeedFreshness(st, 'k', seen(2001), 5000), (e: unknown) => e instanceof FeedRollbackError && /version 2000, older than version 2001, which was seen on 1970/.test(e.message));
    assert.throws(() => checkFeedFreshness(st, 'k', seen(2000, 'f'.repeat(64)), 5000), (e: unknown) => e instanceof FeedRollbackError && /one version, two feeds/.test(e.message));
  });

  test('a feed at or past its expiry is a FeedExpiredError; rollback is said first', () => {
    assert.throws(() => checkFeedFreshness(st, 'k', undefined, 10_000), (e: unknown) => e instanceof FeedExpiredError && /expired at 1970-01-01T00:00:10\.000Z; it is now 1970-01-01T00:00:10\.000Z/.test(e.message));
    assert.throws(() => checkFeedFreshness(st, 'k', seen(3000), 20_000), FeedRollbackError);
  });
});

describe('key rotation documents', () => {
  const channel = 'https://appliances.example.org/rss.xml';
  const k1 = newKey('2024');
  const k2 = newKey('2025');

  test('made by the old key, they verify and name the new key', () => {
    const made = makeRotation(k1.secret, k2.line, channel, { reason: 'yearly rotation', now: 1717243200000 });
    assert.equal(made.fileName, `rotation-${k1.pub.keyId}.json`);
    assert.equal(rotationUrl(channel, k1.pub.keyId), `https://appliances.example.org/keys/rotation-${k1.pub.keyId}.json`);
    assert.deepEqual(JSON.parse(made.document), { type: 'storm-key-rotation', channel, old: `storm-ed25519 ${k1.pub.keyId} ${k1.pub.raw.toString('base64')}`, new: k2.line, reason: 'yearly rotation' });
    const r = verifyRotation(Buffer.from(made.document), made.signature, k1.pub, channel);
    assert.equal(r.to.keyId, k2.pub.keyId);
    assert.equal(r.to.comment, '2025');
    assert.equal(r.version, 1717243200000);
    assert.equal(r.reason, 'yearly rotation');
    assert.throws(() => makeRotation(k1.secret, formatPublicKey(k1.pub), channel), /the new key is the old key/);
  });

  test('every way a rotation can be wrong is refused', () => {
    const made = makeRotation(k1.secret, k2.line, channel);
    const doc = Buffer.from(made.document);
    // Not signed by the key it retires.
    const byNew = makeRotation(k2.secret, newKey().line, channel);
    assert.throws(() => verifyRotation(Buffer.from(byNew.document), byNew.signature, k1.pub, channel), UnknownKeyError);
    // Changed after signing.
    assert.throws(() => verifyRotation(Buffer.from(made.document.replace('"new"', '"new" ')), made.signature, k1.pub, channel), /modified after signing/);
    // For another channel.
    assert.throws(() => verifyRotation(doc, made.signature, k1.pub, 'https://other.example/rss.xml'), WrongChannelError);
    // Signed, but not a rotation away from this key, or not a rotation at all.
    const signedDoc = (content: unknown, signer = k1.secret) => {
      const text = JSON.stringify(content);
      const sig = signStatement(signer, { purpose: 'key-rotation', name: 'x.json', sha256: sha(text), size: Buffer.byteLength(text), channel, version: 1 });
      return () => verifyRotation(Buffer.from(text), sig, signer.publicKey, channel);
    };
    const good = JSON.parse(made.document) as Record<string, string>;
    const cases: [unknown, RegExp][] = [
      [[1], /not a JSON object/],
      [{ ...good, type: 'other' }, /type must be "storm-key-rotation"/],
      [{ ...good, channel: 'https://other.example/rss.xml' }, /is for channel https:\/\/other\.example\/rss\.xml, not/],
      [{ ...good, old: k2.line }, new RegExp(`retires key ${k2.pub.keyId}, but key ${k1.pub.keyId} signed it`)],
      [{ ...good, new: good.old }, /same key as old and new/],
      [{ ...good, new: 'ssh-ed25519 AAAA' }, /names a key storm cannot read/],
      [{ ...good, extra: 1 }, /unknown field "extra"/],
      [{ ...good, reason: 5 }, /"reason" must be a string/],
    ];
    for (const [content, message] of cases) assert.throws(signedDoc(content), (e: unknown) => e instanceof RotationError && message.test(e.message), String(message));
    assert.throws(() => verifyRotation(Buffer.from('{not json'), signStatement(k1.secret, { purpose: 'key-rotation', name: 'x', sha256: sha('{not json'), size: 9, channel, version: 1 }), k1.pub, channel), /not JSON/);
  });
});

// ---------------------------------------------------------------------------------------------
// The provider's side: readChannel against a channel served over HTTP, as the data sources call it.

const FEED = (title: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:storm="https://storm.invalid/xmlns/channel/1"><channel><title>${title}</title><link>https://example.org/</link><description>d</description></channel></rss>\n`;

describe('the provider refuses feeds that are rolled back, frozen, swapped or signed by a retired key', () => {
  let dir: string;
  let root: string;
  let server: Server;
  let port = 0;
  let feedUrl: string;
  let cacheDir: string;
  let warnings: Diagnostic[];
  const k1 = newKey('publisher 2024');

  const serve = () =>
    new Promise<void>((resolve) => {
      server = createServer(async (req, res) => {
        const body = await fs.readFile(path.join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname))).catch(() => null);
        if (!body) return void res.writeHead(404).end();
        res.writeHead(200).end(body);
      });
      server.listen(port, '127.0.0.1', () => {
        port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  const down = () => new Promise<void>((resolve) => server.close(() => resolve()));

  function ctx(trusted: string[] = [k1.line]): ResourceContext {
    const log = { debug() {}, info() {}, warn() {}, error() {} };
    return {
      log,
      provider: { trustedKeys: trusted, cacheDir, controller: null },
      signal: new AbortController().signal,
      session: new HostSession(),
      warn: (summary, detail, p) => warnings.push({ severity: 'warning', summary, detail, path: p }),
    };
  }

  /** Publishes rss.xml with `title` and its signature; returns the statement signed. */
  async function publish(title: string, over: Partial<FeedStatement> = {}, key: SecretKey = k1.secret): Promise<{ statement: FeedStatement; xml: string; sig: string }> {
    const xml = FEED(title);
    const statement = feedStatement(xml, { channel: feedUrl, ...over });
    const sig = signStatement(key, statement);
    await fs.writeFile(path.join(root, 'rss.xml'), xml);
    await fs.writeFile(path.join(root, 'rss.xml.sig'), sig);
    return { statement, xml, sig };
  }

  async function refused(c: ResourceContext, summary: RegExp, urlPath = attr('channel')): Promise<Diagnostic> {
    try {
      await readChannel(c, feedUrl, false, urlPath);
    } catch (e) {
      assert.ok(e instanceof DiagnosticError, `a diagnostic, got ${String(e)}`);
      assert.match(e.diagnostic.summary, summary);
      return e.diagnostic;
    }
    assert.fail(`expected a refusal matching ${summary}`);
  }

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'storm-feed-trust-'));
    root = path.join(dir, 'www');
    await fs.mkdir(path.join(root, 'keys'), { recursive: true });
    await serve();
    feedUrl = `http://127.0.0.1:${port}/rss.xml`;
  });
  beforeEach(async () => {
    warnings = [];
    cacheDir = await fs.mkdtemp(path.join(dir, 'cache-'));
    if (!server.listening) await serve();
    await fs.rm(path.join(root, 'keys'), { recursive: true, force: true });
    await fs.mkdir(path.join(root, 'keys'));
  });
  after(async () => {
    if (server.listening) await down();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('a fresh feed is used, and its version is remembered for the channel and key, atomically', async () => {
    const { statement } = await publish('first');
    const read = await readChannel(ctx(), feedUrl, false, attr('channel'));
    assert.equal(read.verifiedBy, k1.pub.keyId);
    assert.deepEqual(read.statement, statement);
    assert.equal(read.feed.title, 'first');
    const state = await readTrustState(cacheDir, feedUrl);
    assert.equal(state.feeds[k1.pub.keyId]!.version, statement.version);
    assert.equal(state.feeds[k1.pub.keyId]!.sha256, statement.sha256);
    // Several data sources reading the channel at once leave one whole file and no temporaries.
    await Promise.all(Array.from({ length: 6 }, () => readChannel(ctx(), feedUrl, false)));
    assert.deepEqual((await fs.readdir(path.dirname(trustStatePath(cacheDir, feedUrl)))).filter((f) => f.endsWith('.tmp')), []);
    assert.equal((await readTrustState(cacheDir, feedUrl)).feeds[k1.pub.keyId]!.version, statement.version);
    assert.deepEqual(warnings, []);
  });

  test('a replayed older feed is refused, naming the attribute, what was seen and how to forget it', async () => {
    const old = await publish('old', { version: Date.now() - 60_000 });
    await publish('new');
    await readChannel(ctx(), feedUrl, false, attr('channel'));
    await fs.writeFile(path.join(root, 'rss.xml'), old.xml);
    await fs.writeFile(path.join(root, 'rss.xml.sig'), old.sig);
    const d = await refused(ctx(), /^The channel feed is older than one storm has already seen$/);
    assert.deepEqual(d.path, attr('channel'));
    assert.ok(d.detail!.startsWith(`channel = "${feedUrl}": the feed signed by key ${k1.pub.keyId} has version ${old.statement.version} (signed `), d.detail);
    assert.match(d.detail!, /a rollback/);
    assert.ok(d.detail!.includes(`delete ${trustStatePath(cacheDir, feedUrl)}`), d.detail);
    // storm_channel's attribute is url.
    assert.match((await refused(ctx(), /older than one/, attr('url'))).detail!, /^url = "/);
  });

  test('another feed with the same version is refused too', async () => {
    const version = Date.now();
    await publish('one', { version });
    await readChannel(ctx(), feedUrl, false);
    await publish('two', { version });
    assert.match((await refused(ctx(), /older than one storm has already seen/)).detail!, /one version, two feeds/);
  });

  test('an expired feed is refused, saying when it expired and what the publisher does', async () => {
    const { statement } = await publish('stale', { version: Date.now() - 8 * DAY, expires: Date.now() - DAY });
    const d = await refused(ctx(), /^The channel feed has expired$/);
    assert.deepEqual(d.path, attr('channel'));
    assert.ok(d.detail!.includes(`expired at ${new Date(statement.expires).toISOString()}`), d.detail);
    assert.match(d.detail!, /\(a freeze\)/);
    assert.match(d.detail!, /`storm sign --purpose feed rss\.xml` sets a new expiry/);
  });

  test('a feed signed for another channel is refused, with the attribute to change or the re-sign', async () => {
    const other = `http://127.0.0.1:${port}/testing/rss.xml`;
    await publish('testing', { channel: other });
    const d = await refused(ctx(), /^The channel feed is signed for another channel$/);
    assert.deepEqual(d.path, attr('channel'));
    assert.ok(d.detail!.startsWith(`channel = "${feedUrl}" serves a channel feed that key ${k1.pub.keyId} signed for channel ${other}.`), d.detail);
    assert.ok(d.detail!.includes(`set channel = "${other}"`), d.detail);
    assert.ok(d.detail!.includes(`storm sign --purpose feed --channel ${feedUrl} rss.xml`), d.detail);
  });

  test('an old-format feed signature is refused with the re-sign advice', async () => {
    await publish('v2');
    const xml = await fs.readFile(path.join(root, 'rss.xml'));
    const v1 = signStatement(k1.secret, { purpose: 'image', name: 'rss.xml', sha256: sha(xml), size: xml.length }).replace('purpose: image', 'purpose: feed');
    await fs.writeFile(path.join(root, 'rss.xml.sig'), v1);
    const d = await refused(ctx(), /^The channel feed's signature is in storm's old format$/);
    assert.match(d.detail!, /storm-signature-v1 feed signature .*`storm sign --purpose feed rss\.xml`/);
    assert.ok(d.detail!.endsWith(`storm cannot use channel = "${feedUrl}".`), d.detail);
  });

  test('the offline cache serves the last verified feed until its expiry, saying until when, then refuses', async () => {
    const old = await publish('old', { version: Date.now() - 60_000 });
    const expires = Math.ceil((Date.now() + 1500) / 1000) * 1000;
    await publish('current', { expires });
    await readChannel(ctx(), feedUrl, false, attr('channel'));
    // A replayed feed is refused and never becomes the offline copy.
    await fs.writeFile(path.join(root, 'rss.xml'), old.xml);
    await fs.writeFile(path.join(root, 'rss.xml.sig'), old.sig);
    await refused(ctx(), /older than one/);
    await down();
    const offline = await readChannel(ctx(), feedUrl, false, attr('channel'));
    assert.equal(offline.feed.title, 'current');
    const w = warnings.find((x) => /unreachable/.test(x.summary));
    assert.equal(w?.summary, `The channel is unreachable: using its cached copy until ${new Date(expires).toISOString()}`);
    assert.match(w.detail!, /After that, plans that read channel fail until the channel answers again/);
    await new Promise((resolve) => setTimeout(resolve, expires - Date.now() + 50));
    const d = await refused(ctx(), /^The channel is unreachable and its cached copy has expired$/);
    assert.ok(d.detail!.includes(`expired at ${new Date(expires).toISOString()}`), d.detail);
    assert.deepEqual(d.path, attr('channel'));
  });

  test('keys are remembered per channel and key: another trusted key starts from its own versions', async () => {
    const k9 = newKey('second publisher');
    await publish('k1 newest', { version: Date.now() });
    await readChannel(ctx([k1.line, k9.line]), feedUrl, false);
    await publish('k9 older', { version: Date.now() - 60_000 }, k9.secret);
    assert.equal((await readChannel(ctx([k1.line, k9.line]), feedUrl, false)).verifiedBy, k9.pub.keyId);
  });

  test('a key rotation is followed from a trusted key (a chain of two), with a warning; the retired key is refused afterwards', async () => {
    const k2 = newKey('publisher 2025');
    const k3 = newKey('publisher 2026');
    for (const [from, to] of [
      [k1, k2],
      [k2, k3],
    ] as const) {
      const r = makeRotation(from.secret, to.line, feedUrl, { reason: 'yearly rotation' });
      await fs.writeFile(path.join(root, 'keys', r.fileName), r.document);
      await fs.writeFile(path.join(root, 'keys', `${r.fileName}.sig`), r.signature);
    }
    await publish('by k3', {}, k3.secret);
    const read = await readChannel(ctx(), feedUrl, false, attr('channel'));
    assert.equal(read.verifiedBy, k3.pub.keyId);
    assert.deepEqual(read.keys.map((k) => k.keyId), [k1.pub.keyId, k2.pub.keyId, k3.pub.keyId], 'image signatures by the new keys count');
    const followed = warnings.filter((w) => /publisher key was rotated/.test(w.summary));
    assert.equal(followed.length, 2);
    assert.ok(followed[0]!.detail!.includes(`is now signed by key ${k2.pub.keyId}, which key ${k1.pub.keyId} named as its successor (${rotationUrl(feedUrl, k1.pub.keyId)}`), followed[0]!.detail);
    assert.ok(followed[1]!.detail!.includes(`Replace ${k2.pub.keyId}'s line in trusted_keys with this one: "${k3.line}"`), followed[1]!.detail);
    const state = await readTrustState(cacheDir, feedUrl);
    assert.deepEqual(Object.keys(state.retired).sort(), [k1.pub.keyId, k2.pub.keyId].sort());

    // k1 signs a newer feed: the channel retired it, so it is refused even though trusted_keys lists it.
    await publish('by retired k1', { version: Date.now() + 1000 });
    const d = await refused(ctx(), /^The channel feed is signed by a retired key$/);
    assert.ok(d.detail!.includes(`Remove ${k1.pub.keyId} from trusted_keys and trust ${k2.pub.keyId} instead`), d.detail);
  });

  test('a rotation that does not verify is said, not skipped; no rotation at all is the untrusted-key error', async () => {
    const k2 = newKey();
    await publish('by k2', {}, k2.secret);
    const none = await refused(ctx(), /^The channel feed is signed by a key you do not trust$/);
    assert.match(none.detail!, /add its public key line/);

    // k2 "rotating" k1 to itself: the document is not signed by k1.
    const forged = makeRotation(k2.secret, newKey().line, feedUrl);
    await fs.writeFile(path.join(root, 'keys', `rotation-${k1.pub.keyId}.json`), forged.document);
    await fs.writeFile(path.join(root, 'keys', `rotation-${k1.pub.keyId}.json.sig`), forged.signature);
    await refused(ctx(), /^The key rotation document is signed by a key you do not trust$/);

    // A genuine rotation, altered on the way.
    const real = makeRotation(k1.secret, k2.line, feedUrl);
    await fs.writeFile(path.join(root, 'keys', real.fileName), real.document.replace(k2.line, newKey().line));
    await fs.writeFile(path.join(root, 'keys', `${real.fileName}.sig`), real.signature);
    await refused(ctx(), /^The key rotation document was changed after it was signed$/);

    // A genuine rotation for another channel.
    const elsewhere = makeRotation(k1.secret, k2.line, `http://127.0.0.1:${port}/testing/rss.xml`);
    await fs.writeFile(path.join(root, 'keys', real.fileName), elsewhere.document);
    await fs.writeFile(path.join(root, 'keys', `${real.fileName}.sig`), elsewhere.signature);
    assert.match((await refused(ctx(), /^The key rotation document is signed for another channel$/)).detail!, /storm rotate-key --channel/);
  });

  test('what storm remembers, damaged, is said with the file and the way out', async () => {
    await publish('x');
    const file = trustStatePath(cacheDir, feedUrl);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, '{"channel": 1');
    const d = await refused(ctx(), /^storm cannot read what it remembers of the channel$/);
    assert.ok(d.detail!.includes(`${file} (what storm remembers of ${feedUrl}) is not JSON; delete it to start over`), d.detail);
  });
});

// ---------------------------------------------------------------------------------------------
// The publisher's commands.

describe('storm sign --purpose feed, storm verify, storm rotate-key', () => {
  let dir: string;
  let keyFile: string;
  let pubFile: string;
  const key = newKey('cli publisher');
  const feedUrl = 'https://appliances.example.org/storm/rss.xml';
  const xmlWithSelf = `<?xml version="1.0"?>\n<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>t</title><atom:link href="${feedUrl}" rel="self" type="application/rss+xml"/></channel></rss>\n`;

  function io(): KeysCommandIO & { out: () => string; err: () => string } {
    let out = '';
    let err = '';
    return { stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) }, env: { HOME: dir }, out: () => out, err: () => err };
  }

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'storm-feed-cli-'));
    keyFile = path.join(dir, 'publisher.key');
    pubFile = path.join(dir, 'publisher.pub');
    await fs.writeFile(keyFile, key.secret.key.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600 });
    await fs.writeFile(pubFile, `${key.line}\n`);
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('sign takes the channel from the feed\'s self link, and verify infers the purpose and prints channel, version and expiry', async () => {
    const rss = path.join(dir, 'rss.xml');
    await fs.writeFile(rss, xmlWithSelf);
    const s = io();
    assert.equal(await signCommand(['--key', keyFile, '--purpose', 'feed', rss], s), 0, s.err());
    assert.match(s.out(), new RegExp(`rss\\.xml\\.sig: signed feed "rss\\.xml" for channel ${lit(feedUrl)}, version \\d+ \\(signed .*\\), expires 20`));
    const v = io();
    assert.equal(await verifyCommand(['--pub', pubFile, rss], v), 0, v.err());
    assert.match(v.out(), new RegExp(`OK, a valid feed signature by key ${key.pub.keyId} \\(cli publisher\\), as --purpose feed \\(inferred: FILE is an RSS feed\\)`));
    assert.match(v.out(), new RegExp(`\\n  channel  ${lit(feedUrl)}\\n  version  \\d+ \\(signed [0-9T:.-]+Z\\)\\n  expires  [0-9T:.-]+Z \\(in 6 days 23 hours\\)\\n`));

    // --channel other than the feed's own URL: verify fails naming both.
    const wrong = io();
    assert.equal(await verifyCommand(['--pub', pubFile, '--channel', 'https://appliances.example.org/testing/rss.xml', rss], wrong), 1);
    assert.match(wrong.err(), /FAILED: the feed signature by key .* is valid, but for channel https:\/\/appliances\.example\.org\/storm\/rss\.xml, not https:\/\/appliances\.example\.org\/testing\/rss\.xml/);
    // A feed with an image's purpose asked for explicitly.
    const asImage = io();
    assert.equal(await verifyCommand(['--pub', pubFile, '--purpose', 'image', rss], asImage), 1);
    assert.match(asImage.err(), /made for purpose "feed" and purpose "image" was expected/);
  });

  test('sign refuses a feed without a channel, a channel other than the self link, and feed options on images', async () => {
    const bare = path.join(dir, 'bare.xml');
    await fs.writeFile(bare, '<rss version="2.0"><channel><title>t</title></channel></rss>');
    const none = io();
    assert.equal(await signCommand(['--key', keyFile, '--purpose', 'feed', bare], none), 1);
    assert.match(none.err(), /no <atom:link rel="self"> naming its URL: give --channel URL/);
    assert.equal(await signCommand(['--key', keyFile, '--purpose', 'feed', '--channel', 'https://a.example/rss.xml', bare], io()), 0);

    const rss = path.join(dir, 'self.xml');
    await fs.writeFile(rss, xmlWithSelf);
    const mismatch = io();
    assert.equal(await signCommand(['--key', keyFile, '--purpose', 'feed', '--channel', 'https://a.example/rss.xml', rss], mismatch), 1);
    assert.match(mismatch.err(), /the feed says it lives at https:\/\/appliances\.example\.org\/storm\/rss\.xml .* and --channel says https:\/\/a\.example\/rss\.xml/);

    const notFeed = io();
    await fs.writeFile(path.join(dir, 'image.img'), 'not xml');
    assert.equal(await signCommand(['--key', keyFile, '--purpose', 'feed', '--channel', feedUrl, path.join(dir, 'image.img')], notFeed), 1);
    assert.match(notFeed.err(), /this is not an RSS feed/);

    for (const args of [['--channel', feedUrl], ['--expires-in', '7d']]) {
      const u = io();
      assert.equal(await signCommand(['--key', keyFile, ...args, path.join(dir, 'image.img')], u), 2);
      assert.match(u.err(), /is for feeds \(--purpose feed\)/);
    }
    for (const [value, message] of [['7', /is not a duration/], ['400d', /at most 366 days/]] as const) {
      const u = io();
      assert.equal(await signCommand(['--key', keyFile, '--purpose', 'feed', '--expires-in', value, rss], u), 2);
      assert.match(u.err(), message);
    }
    const rot = io();
    assert.equal(await signCommand(['--key', keyFile, '--purpose', 'key-rotation', rss], rot), 2);
    assert.match(rot.err(), /storm rotate-key/);
  });

  test('re-signing an unchanged feed gives a newer version and a new expiry, even with the clock behind the old one', async () => {
    const rss = path.join(dir, 'again.xml');
    await fs.writeFile(rss, xmlWithSelf);
    const versionOf = async () => {
      const p = parseSignature(await fs.readFile(`${rss}.sig`, 'utf8'));
      assert.equal(p.purpose, 'feed');
      return p.purpose === 'feed' ? p : assert.fail();
    };
    assert.equal(await signCommand(['--key', keyFile, '--purpose', 'feed', '--expires-in', '1h', rss], io()), 0);
    const first = await versionOf();
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(await signCommand(['--key', keyFile, '--purpose', 'feed', rss], io()), 0);
    const second = await versionOf();
    assert.ok(second.version > first.version && second.expires > first.expires + 6 * DAY);

    // A signature from a machine whose clock was ahead: the next is still above it, with a warning.
    const ahead = signStatement(key.secret, { ...second, version: Date.now() + DAY, expires: Date.now() + 2 * DAY });
    await fs.writeFile(`${rss}.sig`, ahead);
    const warned = io();
    assert.equal(await signCommand(['--key', keyFile, '--purpose', 'feed', rss], warned), 0);
    assert.match(warned.err(), /not older than this machine's clock .*is the clock wrong\?/);
    assert.equal((await versionOf()).version, (parseSignature(ahead) as FeedStatement).version + 1);
  });

  test('verify: an expired feed and an old-format feed signature fail, saying why; an image is inferred as one', async () => {
    const rss = path.join(dir, 'expired.xml');
    await fs.writeFile(rss, xmlWithSelf);
    const bytes = await fs.readFile(rss);
    await fs.writeFile(`${rss}.sig`, signStatement(key.secret, { purpose: 'feed', name: 'rss.xml', sha256: sha(bytes), size: bytes.length, channel: feedUrl, version: Date.now() - 8 * DAY, expires: Date.now() - DAY }));
    const expired = io();
    assert.equal(await verifyCommand(['--pub', pubFile, rss], expired), 1);
    assert.match(expired.err(), /FAILED: the feed signed by key .*expired at .*; it is now/);

    await fs.writeFile(`${rss}.sig`, signStatement(key.secret, { purpose: 'image', name: 'rss.xml', sha256: sha(bytes), size: bytes.length }).replace('purpose: image', 'purpose: feed'));
    const legacy = io();
    assert.equal(await verifyCommand(['--pub', pubFile, rss], legacy), 1);
    assert.match(legacy.err(), /FAILED: it is a storm-signature-v1 feed signature .*`storm sign --purpose feed rss\.xml`/);

    const img = path.join(dir, 'disk.qcow2');
    await fs.writeFile(img, Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]));
    assert.equal(await signCommand(['--key', keyFile, img], io()), 0);
    const ok = io();
    assert.equal(await verifyCommand(['--pub', pubFile, img], ok), 0, ok.err());
    assert.match(ok.out(), /OK, a valid image signature by key .*, as --purpose image \(inferred: FILE is not a feed\)/);
    // An image signature presented for a feed-looking file says the purpose was inferred.
    await fs.writeFile(`${rss}.sig`, signStatement(key.secret, { purpose: 'image', name: 'rss.xml', sha256: sha(bytes), size: bytes.length }));
    const inferred = io();
    assert.equal(await verifyCommand(['--pub', pubFile, rss], inferred), 1);
    assert.match(inferred.err(), /purpose "image" and purpose "feed" was expected.*inferred from .*give --purpose image/);
  });

  test('rotate-key writes the document and its signature, which verify and the provider follows', async () => {
    const next = newKey('cli publisher 2026');
    const nextPub = path.join(dir, 'next.pub');
    await fs.writeFile(nextPub, `${next.line}\n`);
    const out = path.join(dir, 'site', 'keys');
    const r = io();
    assert.equal(await rotateKeyCommand(['--key', keyFile, '--new', nextPub, '--channel', feedUrl, '--out', out, '--reason', 'scheduled'], r), 0, r.err());
    assert.match(r.out(), new RegExp(`Publish both at https://appliances\\.example\\.org/storm/keys/rotation-${key.pub.keyId}\\.json`));
    const doc = path.join(out, `rotation-${key.pub.keyId}.json`);
    const rotation = verifyRotation(await fs.readFile(doc), await fs.readFile(`${doc}.sig`, 'utf8'), key.pub, feedUrl);
    assert.equal(rotation.to.keyId, next.pub.keyId);
    assert.equal(rotation.reason, 'scheduled');
    const v = io();
    assert.equal(await verifyCommand(['--pub', pubFile, doc], v), 0, v.err());
    assert.match(v.out(), new RegExp(`OK, a valid key rotation signed by key ${key.pub.keyId} .*\\n  channel  ${lit(feedUrl)}\\n  from     ${key.pub.keyId}\\n  to       ${lit(next.line)}\\n`));
    // Verified against the new key it fails: a rotation is the old key's word.
    assert.equal(await verifyCommand(['--pub', nextPub, doc], io()), 1);

    for (const [args, message] of [
      [['--new', nextPub, '--channel', feedUrl], /--key is required/],
      [['--key', keyFile, '--channel', feedUrl], /--new is required/],
      [['--key', keyFile, '--new', nextPub], /--channel is required/],
      [['--key', keyFile, '--new', nextPub, '--channel', 'nowhere'], /--channel: .*is not a URL/],
    ] as const) {
      const u = io();
      assert.equal(await rotateKeyCommand([...args], u), 2);
      assert.match(u.err(), message);
    }
    const same = io();
    assert.equal(await rotateKeyCommand(['--key', keyFile, '--new', pubFile, '--channel', feedUrl, '--out', out], same), 1);
    assert.match(same.err(), /the new key is the old key/);
  });
});
