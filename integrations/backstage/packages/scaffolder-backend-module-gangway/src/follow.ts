/**
 * Waiting for a Gangway run from a scaffolder step: its log lines into the
 * step's log as they arrive (the SSE log stream, resumed with Last-Event-ID
 * after a drop), its status read every few seconds (a run waiting for
 * approval says who must approve), the task's abort signal turned into a
 * cancel of the run.
 */
import {
  GangwayAuth,
  GangwayClient,
  GangwayError,
  Run,
  RunApproval,
  TERMINAL_STATUSES,
} from '@gangway/backstage-common';

/** The part of a logger this uses (LoggerService and winston both fit). */
export interface StepLogger {
  info(message: string, meta?: object): void;
  warn(message: string, meta?: object): void;
  error(message: string, meta?: object): void;
  debug(message: string, meta?: object): void;
}

export interface FollowOptions {
  client: GangwayClient;
  /** A fresh bearer token for each request (plugin tokens are short-lived). */
  token: () => Promise<GangwayAuth>;
  runId: string;
  logger: StepLogger;
  /** The task's signal: aborted when the task is cancelled. */
  signal?: AbortSignal;
  /** Said in the cancel request. */
  cancelReason: string;
  /** Link shown in approval lines. */
  runUrl: string;
  pollIntervalMs: number;
  runTimeoutMs: number;
  /** Resume delays after a dropped log stream (default 250 ms doubling to 5 s). */
  retryDelayMs?: number;
  /** Nothing at all (not even the 15 s keepalive) for this long: reconnect. */
  idleTimeoutMs?: number;
}

/** Why the wait ended without the run reaching a terminal state. */
export class RunAbortedError extends Error {
  constructor(
    message: string,
    readonly run?: Run,
  ) {
    super(message);
    this.name = 'RunAbortedError';
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>(resolve => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** "1 more approval from team payments or role admin, by 2026-12-06T09:00:00Z" */
export function describeApproval(a: RunApproval | undefined): string {
  if (!a) return 'an approval';
  const n = a.remaining ?? a.required ?? 1;
  const who = [
    ...(a.from_teams ?? []).map(t => `team ${t}`),
    ...(a.from_roles ?? []).map(r => `role ${r}`),
  ];
  let s = `${n} more approval${n === 1 ? '' : 's'}`;
  if (who.length) s += ` from ${who.join(' or ')}`;
  if (a.plan_first) s += ' (of the plan)';
  if (a.expires_at) s += `, by ${a.expires_at}`;
  return s;
}

/** The sentence a failed step carries for a run that did not succeed. */
export function describeFailure(run: Run): string {
  const head = `Gangway run ${run.id} (${run.action.id}) ended ${run.status}`;
  switch (run.status) {
    case 'rejected': {
      const r = (run.approval?.decisions ?? []).filter(d => d.decision === 'reject');
      const by = r.map(d => `${d.approver}${d.comment ? `: ${d.comment}` : ''}`).join('; ');
      return `${head}: rejected${by ? ` by ${by}` : ''}${run.reason ? ` (${run.reason})` : ''}`;
    }
    case 'expired':
      return `${head}: the approval expired${run.approval?.expires_at ? ` at ${run.approval.expires_at}` : ''} still waiting for ${describeApproval(run.approval)}${run.reason ? ` (${run.reason})` : ''}`;
    case 'failed':
      if (run.error) return `${head}: ${run.error.code}: ${run.error.message}`;
      return `${head}${run.reason ? `: ${run.reason}` : ''}`;
    case 'cancelled':
      return `${head}${run.cancel_reason || run.reason ? `: ${run.cancel_reason ?? run.reason}` : ''}`;
    default:
      return `${head}${run.reason ? `: ${run.reason}` : ''}`;
  }
}

/**
 * Follows the run until it ends and returns it as it ended. Rejects with a
 * RunAbortedError when the task was cancelled (after asking Gangway to
 * cancel the run) or the run outlived runTimeoutMs (the run is cancelled
 * too), and with a GangwayError when Gangway refuses to show the run.
 */
export async function followRun(opts: FollowOptions): Promise<Run> {
  const { client, runId, logger } = opts;
  const stop = new AbortController(); /* ends both loops */
  let wakeCtl = new AbortController(); /* ends the poll's sleep early */
  let logsDone = false; /* the stream's `end` event came */
  let logsOver = false; /* the stream loop returned, for whatever reason */
  let lastLogId: string | undefined;
  let final: Run | undefined;

  const logs = (async () => {
    let delay = opts.retryDelayMs ?? 250;
    while (!stop.signal.aborted && !logsDone) {
      try {
        const how = await client.stream(
          `/v1/runs/${encodeURIComponent(runId)}/logs?follow=true`,
          await opts.token(),
          e => {
            if (e.event === 'log') {
              if (e.id !== undefined) lastLogId = e.id;
              try {
                const d = JSON.parse(e.data) as { line?: string; stream?: string };
                const text = d.line ?? '';
                if (d.stream === 'stderr') logger.warn(text);
                else logger.info(text);
              } catch {
                logger.info(e.data);
              }
              delay = opts.retryDelayMs ?? 250;
            } else if (e.event === 'end') {
              logsDone = true;
              wakeCtl.abort(); /* the run ended: read it now */
            }
          },
          { lastEventId: lastLogId, signal: stop.signal, idleTimeoutMs: opts.idleTimeoutMs ?? 45_000 },
        );
        if (logsDone || how === 'aborted') return;
        logger.debug(`Gangway log stream of run ${runId} ${how}; resuming after line ${lastLogId ?? 0}`);
      } catch (e) {
        if (stop.signal.aborted) return;
        if (e instanceof GangwayError && e.status >= 400 && e.status < 500 && e.status !== 429) {
          /* Refused for good (401 after the token expired, 404): the status
           * poll still says how the run ends. */
          logger.warn(`Gangway log stream of run ${runId} refused: ${e.message}`);
          return;
        }
        logger.debug(`Gangway log stream of run ${runId} failed (${String(e)}); resuming after line ${lastLogId ?? 0}`);
      }
      await sleep(delay, stop.signal);
      delay = Math.min(delay * 2, 5000);
    }
  })().finally(() => {
    logsOver = true;
  });

  const deadline = Date.now() + opts.runTimeoutMs;
  let approvalSaid = '';
  let statusSaid = '';
  const onAbort = () => wakeCtl.abort();
  opts.signal?.addEventListener('abort', onAbort);
  try {
    for (;;) {
      if (opts.signal?.aborted) {
        const run = await client.cancelRun(await opts.token(), runId, opts.cancelReason).catch(e => {
          logger.error(`Could not cancel Gangway run ${runId}: ${String(e)}`);
          return undefined;
        });
        logger.warn(`Task cancelled: Gangway run ${runId} was asked to cancel (${opts.cancelReason})`);
        throw new RunAbortedError(`Task cancelled; Gangway run ${runId} cancelled`, run);
      }
      if (Date.now() > deadline) {
        const secs = Math.round(opts.runTimeoutMs / 1000);
        await client
          .cancelRun(await opts.token(), runId, `waited ${secs} s in Backstage (gangway.timeouts.runSeconds)`)
          .catch(() => undefined);
        throw new RunAbortedError(`Gangway run ${runId} did not end within ${secs} s; it was cancelled`);
      }
      let token: GangwayAuth;
      try {
        token = await opts.token();
      } catch (e) {
        /* The user's credentials ran out (a very long approval wait): the
         * run goes on in Gangway; this step can no longer follow it. */
        throw new Error(`Cannot follow Gangway run ${runId} any longer: no token for the user (${String(e)}): ${opts.runUrl}`);
      }
      let run: Run;
      try {
        run = await client.getRun(token, runId);
      } catch (e) {
        if (e instanceof GangwayError && e.status >= 400 && e.status < 500 && e.status !== 429) throw e;
        logger.debug(`Reading Gangway run ${runId} failed (${String(e)}); trying again`);
        await sleep(opts.pollIntervalMs, wakeCtl.signal);
        continue;
      }
      if (TERMINAL_STATUSES.has(run.status)) {
        final = run;
        break;
      }
      if (run.status === 'pending_approval') {
        const said = describeApproval(run.approval);
        if (said !== approvalSaid) {
          approvalSaid = said;
          logger.info(`Gangway run ${runId} is waiting for ${said}: ${opts.runUrl}`);
        }
      } else if (run.status !== statusSaid) {
        statusSaid = run.status;
        logger.info(`Gangway run ${runId} is ${run.status}`);
        for (const w of run.warnings ?? []) logger.warn(`Gangway: ${w.code}: ${w.message}`);
      }
      await sleep(opts.pollIntervalMs, wakeCtl.signal);
      if (wakeCtl.signal.aborted && !opts.signal?.aborted) wakeCtl = new AbortController();
    }
    /* Let the log stream deliver its last lines and its `end` event. */
    const grace = Date.now() + 10_000;
    while (!logsDone && !logsOver && Date.now() < grace && !opts.signal?.aborted) await sleep(50);
    return final;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    stop.abort();
    await logs;
  }
}
