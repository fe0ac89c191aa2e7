import { Router } from 'express';
import type { Logger } from '../log.ts';
import { dependencyUp } from '../net/metrics.ts';

// Probes for load balancers and orchestrators. /healthz says the process answers. /readyz says what this instance
// can do: whether the site grants the service's script a token and whether the store answers, in its body and in
// the metrics. Its status follows only what is this instance's own: 503 while it shuts down, 200 otherwise, even
// with the site or Redis down. Every instance shares those, so a 503 for them would take every instance out of the
// load balancer at once, and people would get the proxy's bare error instead of the service's own page saying the
// site or the store is unavailable and that it carries on by itself (docs/decisions/0011-readiness.md). With ftrack,
// the event hub connection is reported too, as degraded when down: its listener reconnects by itself.
// Checks are remembered for a while: a probe every few seconds must not mint a site token each time.

/** A check that waits longer than this counts as failed: orchestrators give up on slow probes anyway. */
const CHECK_TIMEOUT_MS = 5000;

/** `hub`: ftrack's event hub, where ftrack's right-click menu reaches the service (only with ftrack). */
export type Dependency = 'site' | 'store' | 'hub';

export interface DependencyState {
  ok: boolean;
  /** When the check ran (ISO 8601). */
  checkedAt: string;
  error?: { code: string; message: string };
}

export interface ReadinessReport {
  /** ok: everything answers; degraded: a shared dependency does not (the instance answers with its error pages); stopping: shutting down. */
  status: 'ok' | 'degraded' | 'stopping';
  checks: Checks<DependencyState>;
}

/** The site and the store always; the hub where there is one. */
export type Checks<T> = Record<'site' | 'store', T> & Partial<Record<'hub', T>>;

export interface ReadinessOptions {
  checks: Checks<() => Promise<void>>;
  /** How long a finished check is reused. */
  cacheMs: number;
  timeoutMs?: number;
  log?: Logger;
}

const failures: Record<Dependency, { code: string; message: string }> = {
  site: { code: 'site_unreachable', message: "The tracking site did not answer, or refused the service's credentials." },
  store: { code: 'store_unavailable', message: 'The shared store (Redis) did not answer.' },
  hub: { code: 'hub_disconnected', message: "Not connected to ftrack's event hub: its Actions menu does not offer the service's actions until it reconnects (by itself)." },
};

export class Readiness {
  readonly #options: ReadinessOptions;
  #stopping = false;
  /** The last round of checks (or the one running), and when it finished. */
  #last: { report: Promise<Checks<DependencyState>>; doneAt: number | null } | null = null;
  /** The last finished round's outcome. */
  #known: Checks<DependencyState> | null = null;

  constructor(options: ReadinessOptions) {
    this.#options = options;
  }

  /** From now on the instance is going away: /readyz says so at once, without asking anything. */
  stopping(): void {
    this.#stopping = true;
  }

  async report(): Promise<ReadinessReport> {
    // Stopping: answered at once, with what was last known.
    if (this.#stopping) return { status: 'stopping', checks: this.#known ?? ({} as Checks<DependencyState>) };
    const checks = await this.#checks();
    return { status: Object.values(checks).every((check) => check.ok) ? 'ok' : 'degraded', checks };
  }

  /** The cached round while fresh (or running: callers share it), else a new one. */
  #checks(): Promise<Checks<DependencyState>> {
    const last = this.#last;
    if (last !== null && (last.doneAt === null || Date.now() - last.doneAt < this.#options.cacheMs)) return last.report;
    const round = { report: this.#run(this.#known), doneAt: null as number | null };
    void round.report.then((known) => {
      round.doneAt = Date.now();
      this.#known = known;
    });
    this.#last = round;
    return round.report;
  }

  /** Every check at once; never rejects (a failed check is an answer). */
  async #run(before: Checks<DependencyState> | null): Promise<Checks<DependencyState>> {
    const entries = await Promise.all(
      (Object.keys(this.#options.checks) as Dependency[]).map(async (dependency): Promise<[Dependency, DependencyState]> => {
        const checkedAt = new Date().toISOString();
        try {
          await withTimeout(this.#options.checks[dependency]!(), this.#options.timeoutMs ?? CHECK_TIMEOUT_MS);
          dependencyUp.set({ dependency }, 1);
          if (before !== null && before[dependency]?.ok === false) this.#options.log?.info({ dependency }, 'readiness: answering again');
          return [dependency, { ok: true, checkedAt }];
        } catch (error) {
          dependencyUp.set({ dependency }, 0);
          // Said once when it starts failing, not at every probe.
          if (before === null || before[dependency]?.ok !== false) this.#options.log?.warn({ dependency, err: error }, 'readiness: not answering');
          return [dependency, { ok: false, checkedAt, error: failures[dependency] }];
        }
      }),
    );
    return Object.fromEntries(entries) as Checks<DependencyState>;
  }
}

export function healthRoutes(readiness: Readiness): Router {
  const router = Router();

  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    const report = await readiness.report();
    res
      .set('Cache-Control', 'no-store')
      .status(report.status === 'stopping' ? 503 : 200)
      .json(report);
  });

  return router;
}

function withTimeout(check: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([check, timeout]).finally(() => clearTimeout(timer));
}
