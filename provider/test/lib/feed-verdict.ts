// What parseFeed owes every input, whatever it is, checked the same way by the fuzzer
// (feed-fuzz.test.ts) and the corpus of hostile feeds (feed-hostile.test.ts): an answer within a
// time bound; a listing that keeps storm's rules, so nothing downstream (volume names, cache
// paths, version constraints) meets a value it did not expect; or a FeedError whose message a
// publisher can act on.
import assert from 'node:assert/strict';
import { FeedError, parseFeed, type ChannelFeed } from '../../src/channel/feed.ts';
import { ResolutionError, resolve } from '../../src/channel/resolve.ts';
import { NAME_PATTERN, SHA256_PATTERN, VERSION_PATTERN } from '../../src/rules.ts';

export type Verdict = { ok: true; feed: ChannelFeed; ms: number } | { ok: false; message: string; ms: number };

/**
 * The wording bar. A refusal is one line (the diagnostic shows it after the feed's URL), says
 * where first (the feed as a whole, a line and column, or an item and its place), quotes what it
 * shows of the feed instead of pasting it, and never shows a parser's own words or a JavaScript
 * value where a word belongs.
 */
export const WHERE = /^(the feed |line \d+, column \d+: |item \d+ \(line \d+, column \d+\)[: ])/;
export const INTERNALS =
  /Line: |Column: |Char: |Unexpected close tag|Non-whitespace before|Invalid character entity|Unable to parse|Feed not recognized|Cannot read propert|\bundefined\b(?! entity)|\bnull\b|\[object|TypeError|RangeError|SyntaxError|Maximum call stack|xml2js|\bsax\b|NaN|Infinity|appliance definition|\(.*:\d+:\d+\)$/;
export const MAX_MESSAGE_LENGTH = 600;

/** Characters no message may hold: line breaks of any kind, controls, private-use, noncharacters, lone surrogates. */
export function unshowable(s: string): string | null {
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp === 0x2028 || cp === 0x2029) return ch;
    if ((cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0xe000 && cp <= 0xf8ff) || cp >= 0xf0000) return ch;
    if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return ch;
  }
  return null;
}

const isAbsoluteUrl = (u: string): boolean => {
  try {
    return ['http:', 'https:', 'file:'].includes(new URL(u).protocol);
  } catch {
    return false;
  }
};

function checkListing(feed: ChannelFeed): void {
  const ids = new Set<string>();
  for (const [i, item] of feed.items.entries()) {
    const at = `item ${i + 1}`;
    assert.match(item.name, NAME_PATTERN, at);
    assert.match(item.version, VERSION_PATTERN, at);
    const id = `${item.name} ${item.version}`;
    assert.ok(!ids.has(id), `${at}: ${id} listed once`);
    ids.add(id);
    assert.match(item.image.sha256, SHA256_PATTERN, at);
    assert.ok(item.definitionSha256 === null || SHA256_PATTERN.test(item.definitionSha256), at);
    for (const url of [item.image.url, item.definitionUrl, item.image.sig, item.base?.url, item.base?.sig]) {
      if (url !== null && url !== undefined) assert.ok(isAbsoluteUrl(url), `${at}: ${JSON.stringify(url)} is an absolute URL`);
    }
    assert.ok(item.image.sizeBytes === null || (Number.isSafeInteger(item.image.sizeBytes) && item.image.sizeBytes > 0), `${at}: size ${item.image.sizeBytes}`);
    if (item.base !== null) {
      assert.match(item.base.name, NAME_PATTERN, at);
      assert.match(item.base.sha256, SHA256_PATTERN, at);
    }
    for (const p of item.provides) assert.match(p, NAME_PATTERN, at);
    for (const d of item.dependencies) {
      const [name, version, ...rest] = d.split(':');
      assert.match(name!, NAME_PATTERN, at);
      assert.ok(version === undefined || VERSION_PATTERN.test(version), `${at}: dependency ${d}`);
      assert.equal(rest.length, 0, at);
    }
    for (const text of [item.label, item.description, item.link ?? '']) assert.equal(typeof text, 'string', at);
    // Line breaks are the text's own; everything else must be a character a page can show.
    const bad = unshowable(`${item.label}${item.description}`.replace(/[\n\t\u2028\u2029]/g, ' '));
    assert.equal(bad, null, `${at}: label and description hold only characters a page can show`);
  }
  // What the reader accepts, the data sources can resolve: only ever a ResolutionError. (The
  // first hundred names: each resolution reads the whole listing.)
  for (const name of [...new Set(feed.items.map((i) => i.name))].slice(0, 100)) {
    try {
      resolve(feed.items, name, null);
    } catch (err) {
      assert.ok(err instanceof ResolutionError, `resolving ${name}: ${String(err)}`);
    }
  }
}

// Words that are a JavaScript value when storm writes them, and the publisher's own when the feed has them.
const VALUE_WORDS = ['NaN', 'Infinity', 'undefined', 'null'];

/**
 * The message without what it shows of the feed: a feed may itself hold "NaN" or "undefined" (an
 * attribute named NaN, length="NaN"), and showing it back is the publisher's own text, not a
 * JavaScript value.
 */
function ownWords(message: string, input: string | Uint8Array): string {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
  const unquoted = VALUE_WORDS.filter((w) => text.includes(w)).reduce((m, w) => m.replaceAll(w, ''), message);
  return unquoted.replace(/"(?:[^"\\]|\\.)*"/g, (quoted) => {
    let shown: unknown;
    try {
      shown = JSON.parse(quoted);
    } catch {
      return quoted;
    }
    // A quote may be cut short (quoted() in feed.ts ends it with "..."); what is left must be the feed's own.
    return typeof shown === 'string' && text.includes(shown.replace(/\.\.\.$/, '')) ? '""' : quoted;
  });
}

/**
 * Parses, holding the call to the bound and the answer to the promises above. The time is the
 * smaller of the wall clock's and the CPU's: a hang or a quadratic shape blows both, a machine
 * busy with other work only the wall clock, the garbage collector's own threads only the CPU.
 */
export async function judged(input: string | Uint8Array, options: { feedUrl?: string; boundMs?: number } = {}): Promise<Verdict> {
  const bound = options.boundMs ?? 2000;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const took = () => {
    const used = process.cpuUsage(cpu);
    return Math.min(performance.now() - started, (used.user + used.system) / 1000);
  };
  let feed: ChannelFeed;
  try {
    feed = await parseFeed(input, options.feedUrl);
  } catch (err) {
    const ms = took();
    assert.ok(ms < bound, `refused in ${ms.toFixed(0)} ms, over ${bound} ms`);
    if (!(err instanceof FeedError)) assert.fail(`not a FeedError: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    const m = err.message;
    assert.match(m, WHERE, 'says where first');
    assert.doesNotMatch(ownWords(m, input), INTERNALS, `in its own words: ${m}`);
    assert.ok(m.length <= MAX_MESSAGE_LENGTH, `at most ${MAX_MESSAGE_LENGTH} characters: ${m.length}`);
    const bad = unshowable(m);
    assert.equal(bad, null, `one line of characters anyone can show: ${JSON.stringify(bad)} in ${JSON.stringify(m)}`);
    const line = /^(?:item \d+ \()?line (\d+), column (\d+)/.exec(m);
    if (line) {
      const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
      const lines = text.split(/\r\n?|\n/).length;
      assert.ok(Number(line[1]) >= 1 && Number(line[1]) <= lines, `line ${line[1]} of ${lines}`);
      assert.ok(Number(line[2]) >= 1, 'a column');
    }
    return { ok: false, message: m, ms };
  }
  const ms = took();
  assert.ok(ms < bound, `read in ${ms.toFixed(0)} ms, over ${bound} ms`);
  checkListing(feed);
  return { ok: true, feed, ms };
}
