import { z } from 'zod';

// Fault injection for the sandbox site: off by default, set per site through the admin endpoint
// (`PUT /sandbox/admin/faults`) or the SANDBOX_FAULTS environment variable (the same JSON).
// Rates are shares of requests (0..1); each failing request picks one of the listed modes at random.

export const storagePutFaultModes = ['500', '503', 'reset'] as const;
export const apiFaultModes = ['429', '502', '503'] as const;
export type StoragePutFault = (typeof storagePutFaultModes)[number];
export type ApiFault = (typeof apiFaultModes)[number];

const rate = z.number().min(0).max(1);

export const faultSettingsSchema = z.strictObject({
  /** Share of storage PUTs (single objects and parts) that fail. */
  storagePutFailRate: rate.default(0),
  /** 500 InternalError, 503 SlowDown, or the connection reset after part of the body was read. */
  storagePutModes: z.array(z.enum(storagePutFaultModes)).min(1).default(['500', '503', 'reset']),
  /** The next this many storage PUTs fail, whatever the rate (counts down; for deterministic tests). */
  storagePutFailCount: z.number().int().min(0).default(0),
  /** Share of storage GETs whose connection is dropped part-way through the body. */
  storageGetResetRate: rate.default(0),
  /** The next this many storage GETs are dropped part-way, whatever the rate (counts down). */
  storageGetResetCount: z.number().int().min(0).default(0),
  /** Share of REST API requests (not auth) answered with an error instead. */
  apiFailRate: rate.default(0),
  apiModes: z.array(z.enum(apiFaultModes)).min(1).default(['429', '502', '503']),
  /** The next this many API requests fail, whatever the rate (counts down; for deterministic tests). */
  apiFailCount: z.number().int().min(0).default(0),
  /** Retry-After sent with injected 429s, in seconds. */
  retryAfterSeconds: z.number().int().min(0).max(3600).default(1),
  /** Delay added before every API and storage response, in milliseconds. */
  latencyMs: z.number().int().min(0).max(60_000).default(0),
  /** Access tokens (already issued ones too) expire this many seconds after issue, when set. */
  tokenTtlSeconds: z.number().int().min(0).nullable().default(null),
  /** Signed storage URLs (already issued ones too) expire this many seconds after signing, when set. */
  signedUrlTtlSeconds: z.number().int().min(0).nullable().default(null),
});

export type FaultSettings = z.infer<typeof faultSettingsSchema>;
export type FaultSettingsInput = z.input<typeof faultSettingsSchema>;

export class FaultInjector {
  #settings: FaultSettings;
  readonly #random: () => number;

  constructor(initial: FaultSettingsInput = {}, random: () => number = Math.random) {
    this.#settings = faultSettingsSchema.parse(initial);
    this.#random = random;
  }

  get settings(): Readonly<FaultSettings> {
    return this.#settings;
  }

  /** Replaces the settings; what is not given returns to its default (off). Throws a ZodError on bad input. */
  set(input: unknown): FaultSettings {
    this.#settings = faultSettingsSchema.parse(input);
    return this.#settings;
  }

  /** Changes only the given settings. Throws a ZodError on bad input. */
  update(input: unknown): FaultSettings {
    // Merge the raw input before parsing: a parsed partial would fill every missing key with its default.
    const changes = z.record(z.string(), z.unknown()).parse(input);
    this.#settings = faultSettingsSchema.parse({ ...this.#settings, ...changes });
    return this.#settings;
  }

  reset(): void {
    this.#settings = faultSettingsSchema.parse({});
  }

  /** The storage PUT fault to play now, or null. */
  storagePutFault(): StoragePutFault | null {
    const fail = this.#countDown('storagePutFailCount') || this.#roll(this.#settings.storagePutFailRate);
    return fail ? this.#pick(this.#settings.storagePutModes) : null;
  }

  storageGetReset(): boolean {
    return this.#countDown('storageGetResetCount') || this.#roll(this.#settings.storageGetResetRate);
  }

  /** The API fault to play now, or null. */
  apiFault(): ApiFault | null {
    const fail = this.#countDown('apiFailCount') || this.#roll(this.#settings.apiFailRate);
    return fail ? this.#pick(this.#settings.apiModes) : null;
  }

  /** Waits the configured latency (resolves at once when none). */
  async delay(): Promise<void> {
    const ms = this.#settings.latencyMs;
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
  }

  #countDown(counter: 'storagePutFailCount' | 'storageGetResetCount' | 'apiFailCount'): boolean {
    if (this.#settings[counter] <= 0) return false;
    this.#settings = { ...this.#settings, [counter]: this.#settings[counter] - 1 };
    return true;
  }

  #roll(share: number): boolean {
    return share > 0 && this.#random() < share;
  }

  #pick<T>(modes: readonly T[]): T {
    const mode = modes[Math.floor(this.#random() * modes.length)] ?? modes[0];
    if (mode === undefined) throw new Error('no fault modes configured');
    return mode;
  }
}

/** Reads SANDBOX_FAULTS (JSON) from the environment; throws with the variable named when it is malformed. */
export function faultsFromEnv(value: string | undefined): FaultSettingsInput {
  if (value === undefined || value.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new Error('SANDBOX_FAULTS must be a JSON object, e.g. {"storagePutFailRate":0.1}');
  }
  const result = faultSettingsSchema.safeParse(parsed);
  if (!result.success) throw new Error(`SANDBOX_FAULTS is invalid: ${z.prettifyError(result.error)}`);
  return parsed as FaultSettingsInput;
}
