// Whether a verified feed may be used now: not past its expiry (a frozen feed), not older than
// the newest this machine has seen for the channel from that key (a rolled-back feed), and not
// signed by a key the channel retired through a rotation. Pure: the caller brings the time and
// what it remembers (drivers/channel.ts keeps that on disk).
import { VerificationError, formatTime, type FeedStatement } from './signing.ts';

/** The newest feed seen for a channel from one key. */
export interface SeenFeed {
  version: number;
  sha256: string;
  /** When it was first seen, ms since the epoch. */
  seenAt: number;
}

/** A key the channel retired by publishing a rotation signed by it. */
export interface RetiredKey {
  /** The key id it was rotated to. */
  successor: string;
  /** The rotation's version (its signing time, ms). */
  version: number;
  /** When storm followed the rotation, ms since the epoch. */
  followedAt: number;
}

/** storm sign's versions are signing times; anything earlier than 2001 is some other counter. */
const looksLikeTime = (version: number) => version >= 978_307_200_000;

/** "N (signed T)" when the version is a signing time, as storm sign makes it; else "N". */
export function versionText(version: number): string {
  return looksLikeTime(version) ? `${version} (signed ${formatTime(version)})` : String(version);
}

export const describeVersion = (version: number): string => `version ${versionText(version)}`;

/** "at T" for a version that is a signing time, else "as version N": for "signed by K at T". */
export function whenSigned(version: number): string {
  return looksLikeTime(version) ? `at ${formatTime(version)}` : `as version ${version}`;
}

export class FeedExpiredError extends VerificationError {
  override name = 'FeedExpiredError';
  constructor(
    readonly keyId: string,
    readonly version: number,
    readonly expires: number,
    readonly now: number,
  ) {
    super(`the feed signed by key ${keyId}, ${describeVersion(version)}, expired at ${formatTime(expires)}; it is now ${formatTime(now)}`);
  }
}

export class FeedRollbackError extends VerificationError {
  override name = 'FeedRollbackError';
  constructor(
    readonly keyId: string,
    readonly version: number,
    readonly newest: SeenFeed,
  ) {
    super(
      version === newest.version
        ? `the feed signed by key ${keyId} has ${describeVersion(version)}, but a different feed with that same version was seen on ${formatTime(newest.seenAt)}: one version, two feeds`
        : `the feed signed by key ${keyId} has ${describeVersion(version)}, older than ${describeVersion(newest.version)}, which was seen on ${formatTime(newest.seenAt)}`,
    );
  }
}

export class RetiredKeyError extends VerificationError {
  override name = 'RetiredKeyError';
  constructor(
    readonly keyId: string,
    readonly retired: RetiredKey,
  ) {
    super(`the feed is signed by key ${keyId}, which the channel retired: it published a rotation to key ${retired.successor}, signed by ${keyId} ${whenSigned(retired.version)}, which storm followed on ${formatTime(retired.followedAt)}`);
  }
}

/**
 * Throws unless the feed may be used at `now`. Rollback is checked before expiry: a replayed
 * feed is usually expired too, and "older than what you saw" says more about what happened.
 * The same version is fine only for the same bytes (the feed fetched again).
 */
export function checkFeedFreshness(statement: FeedStatement, keyId: string, newest: SeenFeed | undefined, now: number): void {
  if (newest && (statement.version < newest.version || (statement.version === newest.version && statement.sha256 !== newest.sha256))) {
    throw new FeedRollbackError(keyId, statement.version, newest);
  }
  if (now >= statement.expires) throw new FeedExpiredError(keyId, statement.version, statement.expires, now);
}
