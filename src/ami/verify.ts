import type { AmiFields } from './payload.ts';
import type { ReplayGuard } from './replay-guard.ts';
import { amiSigningMessage, signAmiMessage, signaturesMatch } from './signature.ts';

// Whether an AMI request really comes from ShotGrid, recently, and for the first time (ami.md, "Signing"). The
// checks run in an order that keeps the replay guard honest: only a request whose signature verified may claim its
// signature in the guard, so forged requests cannot use up (poison) the slot of a genuine one.

export type AmiRejection = 'unsigned' | 'bad_signature' | 'bad_timestamp' | 'stale' | 'future' | 'replayed';

export type AmiVerification =
  /** skewSeconds = now − timestamp (negative when ShotGrid's clock is ahead), for the log. */
  | { ok: true; signed: true; skewSeconds: number }
  /** No signature, and unsigned requests are accepted by configuration: the user is then taken on trust. */
  | { ok: true; signed: false }
  | { ok: false; reason: AmiRejection; message: string };

export interface VerifyOptions {
  /** The action's secret tokens; any may match, so a token can be rotated without downtime. */
  secrets: readonly string[];
  /** How far the timestamp may lie in the past, and (clock skew) in the future. */
  windowSeconds: number;
  acceptUnsigned: boolean;
  replay: ReplayGuard;
  now?: Date;
}

const hexSha1Pattern = /^[0-9a-f]{40}$/;
const timestampPattern = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

export async function verifyAmiRequest(fields: AmiFields, options: VerifyOptions): Promise<AmiVerification> {
  if (!(options.windowSeconds > 0)) throw new RangeError(`windowSeconds must be positive (got ${options.windowSeconds})`);

  const signatures = valuesOf(fields, 'signature');
  if (signatures.length === 0) {
    if (options.acceptUnsigned) return { ok: true, signed: false };
    return reject('unsigned', 'The request is not signed. Give the Action Menu Item in ShotGrid the secret token this service is configured with.');
  }
  if (signatures.length > 1) return reject('bad_signature', 'The request carries more than one signature.');
  if (options.secrets.length === 0) {
    // Accepting it unverified would let anyone add a made-up signature to pass as signed.
    return reject(
      'bad_signature',
      'The request is signed, but this service has no secret token for this action, so it cannot check the signature. ' +
        'Set AMI_SECRET_TOKEN (or the action’s own AMI_SECRET_TOKEN_<ACTION>) to the Action Menu Item’s secret token.',
    );
  }
  // Hex case does not change what was signed; one spelling per signature keeps the replay key from being dodged.
  const signature = (signatures[0] ?? '').toLowerCase();
  if (!hexSha1Pattern.test(signature)) return reject('bad_signature', 'The signature is not a hex HMAC-SHA1.');
  // Autodesk's sample verifier reads the form with cgi.FieldStorage, which drops blank fields: a signature made the
  // way it verifies covers the non-blank fields only. Either reading is accepted (ami.md, "Signing").
  const messages = [amiSigningMessage(fields)];
  if (fields.some(([name, value]) => value === '' && name !== 'signature')) messages.push(amiSigningMessage(fields.filter(([, value]) => value !== '')));
  let matched = false;
  for (const secret of options.secrets) {
    // Every secret and reading is tried, so the time taken does not tell which one matched.
    for (const message of messages) matched = signaturesMatch(signAmiMessage(message, secret), signature) || matched;
  }
  if (!matched) {
    return reject(
      'bad_signature',
      'The signature does not match. The Action Menu Item’s secret token in ShotGrid and the one this service is configured with may differ.',
    );
  }

  const timestamps = valuesOf(fields, 'timestamp');
  const signedAt = timestamps.length === 1 ? parseAmiTimestamp(timestamps[0] ?? '') : null;
  if (signedAt === null) {
    return reject('bad_timestamp', 'The request has no valid timestamp (expected one, as YYYY-MM-DDTHH:MM:SSZ in UTC).');
  }
  const now = options.now ?? new Date();
  const skewSeconds = (now.getTime() - signedAt) / 1000;
  if (skewSeconds > options.windowSeconds) {
    return reject(
      'stale',
      `The request was signed ${Math.round(skewSeconds)} s ago; requests older than ${options.windowSeconds} s are refused. ` +
        'Run the action again from ShotGrid. If this keeps happening, check the clocks of ShotGrid and this server.',
    );
  }
  if (skewSeconds < -options.windowSeconds) {
    return reject(
      'future',
      `The request is dated ${Math.round(-skewSeconds)} s in the future, more than the ${options.windowSeconds} s allowed for clock differences. ` +
        'Check the clocks of ShotGrid and this server.',
    );
  }

  // A signature stays acceptable while now lies within the window either side of its timestamp (2 × window in
  // all), so remembering it that long from first use covers every moment it could be replayed; +1 s for rounding.
  const firstUse = await options.replay.firstUse(signature, Math.ceil(2 * options.windowSeconds) + 1);
  if (!firstUse) {
    return reject('replayed', 'This request was already used. Run the action again from ShotGrid rather than resending the form.');
  }
  return { ok: true, signed: true, skewSeconds };
}

/** The `timestamp` field as milliseconds since the epoch, or null unless it is a real UTC time to the second. */
export function parseAmiTimestamp(value: string): number | null {
  const match = timestampPattern.exec(value);
  if (!match) return null;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  const time = Date.UTC(year, month - 1, day, hour, minute, second);
  // Date.UTC rolls 2026-02-30 over to March: only a round trip proves the date exists.
  const date = new Date(time);
  const exists =
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second;
  return exists ? time : null;
}

function valuesOf(fields: AmiFields, name: string): string[] {
  const values: string[] = [];
  for (const [field, value] of fields) if (field === name) values.push(value);
  return values;
}

function reject(reason: AmiRejection, message: string): AmiVerification {
  return { ok: false, reason, message };
}
