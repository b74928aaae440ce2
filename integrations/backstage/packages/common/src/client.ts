/**
 * A small client of Gangway's HTTP API (schemas/openapi.json): only what
 * the Backstage modules use. Every call takes the bearer token to send, so
 * one client serves many users (each scaffolder task sends its own user's
 * plugin token).
 */
import { readSse, SseEnd, SseEvent } from './sse';

/** A problem+json answer of Gangway (RFC 9457 with `code` and `errors`). */
export interface GangwayProblem {
  type?: string;
  title?: string;
  status: number;
  code: string;
  detail: string;
  errors?: Array<{ pointer: string; message: string; keyword?: string }>;
}

export type RunStatus =
  | 'accepted'
  | 'pending_approval'
  | 'queued'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'timed_out'
  | 'cancelled'
  | 'rejected'
  | 'expired';

export const TERMINAL_STATUSES: ReadonlySet<RunStatus> = new Set<RunStatus>([
  'succeeded',
  'failed',
  'timed_out',
  'cancelled',
  'rejected',
  'expired',
]);

export interface RunApproval {
  required?: number;
  remaining?: number;
  from_teams?: string[];
  from_roles?: string[];
  plan_first?: boolean;
  expires_at?: string;
  decisions?: Array<{ approver: string; decision: 'approve' | 'reject'; comment?: string; at?: string }>;
}

export interface Run {
  id: string;
  action: { id: string; version?: string };
  status: RunStatus;
  reason?: string;
  error?: { code: string; message: string };
  attempt: number;
  inputs: Record<string, unknown>;
  outputs?: Record<string, unknown>;
  requested_by: { subject: string; teams?: string[] };
  idempotency_key?: string;
  resource?: string;
  approval?: RunApproval;
  cancel_reason?: string;
  warnings?: Array<{ code: string; message: string }>;
  created_at: string;
  updated_at?: string;
}

export interface Resource {
  id: string;
  action: string;
  kind: string;
  name: string;
  owner: { subject?: string; teams?: string[] };
  created_by_run?: string;
  outputs?: Record<string, unknown>;
  status: 'active' | 'tearing_down' | 'teardown_failed' | 'deleted';
  expires_at?: string;
  max_expires_at?: string;
  teardown_run?: string;
  needs_attention?: boolean;
  created_at?: string;
  updated_at?: string;
  deleted_at?: string;
}

export interface ActionSummary {
  id: string;
  version: string;
  title: string;
  description?: string | null;
  worker_type: string;
  tags?: string[] | null;
}

export interface Action extends ActionSummary {
  inputs: Record<string, unknown>;
}

export interface ValidateResult {
  valid: true;
  action: string;
  version: string;
  inputs: Record<string, unknown>;
  approval: null | {
    approvals?: number;
    from_teams?: string[];
    from_roles?: string[];
    expires_after_seconds?: number;
  };
  ttl_seconds?: number;
}

export interface RunRequest {
  inputs: Record<string, unknown>;
  ttl_seconds?: number;
  justification?: string;
}

/** An answer of Gangway that is not a success, with its problem detail. */
export class GangwayError extends Error {
  readonly status: number;
  readonly problem?: GangwayProblem;

  constructor(what: string, status: number, problem?: GangwayProblem, body?: string) {
    super(GangwayError.describe(what, status, problem, body));
    this.name = 'GangwayError';
    this.status = status;
    this.problem = problem;
  }

  /** "submit deploy: 422 validation_failed: the inputs ...; /inputs/x: must be ..." */
  static describe(what: string, status: number, problem?: GangwayProblem, body?: string): string {
    if (!problem) return `${what}: HTTP ${status}${body ? `: ${body.slice(0, 300)}` : ''}`;
    const fields = (problem.errors ?? [])
      .slice(0, 10)
      .map(e => `${e.pointer || '/'}: ${e.message}`)
      .join('; ');
    return `${what}: ${status} ${problem.code}: ${problem.detail}${fields ? ` (${fields})` : ''}`;
  }
}

/**
 * What a request is sent with: a bearer token, or a token and extra headers
 * (`Gangway-On-Behalf-Of` for a service token with the act_on_behalf role).
 */
export type GangwayAuth = string | { token: GangwayAuth; headers?: Record<string, string> };

function authHeaders(auth: GangwayAuth): Record<string, string> {
  if (typeof auth === 'string') return { Authorization: `Bearer ${auth}` };
  return { ...auth.headers, Authorization: `Bearer ${auth.token}` };
}

export interface GangwayClientOptions {
  /** Where the API is, e.g. http://gangway.internal:8080 (no trailing /v1). */
  baseUrl: string;
  /** Per request, in milliseconds (default 30 s). Streams are not bounded. */
  requestTimeoutMs?: number;
  /** Replaces the global fetch (tests). */
  fetch?: typeof fetch;
  /** Sent as User-Agent. */
  userAgent?: string;
}

/** The submit's answer: the run, and whether Gangway replayed an earlier one. */
export interface Submitted {
  run: Run;
  replayed: boolean;
}

export class GangwayClient {
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly userAgent: string;

  constructor(opts: GangwayClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.fetchImpl = opts.fetch ?? fetch;
    this.userAgent = opts.userAgent ?? 'gangway-backstage';
  }

  /** The console page of a run (docs: /ui/runs/{id}). */
  runUrl(runId: string, consoleBaseUrl?: string): string {
    return `${(consoleBaseUrl ?? this.baseUrl).replace(/\/+$/, '')}/ui/runs/${encodeURIComponent(runId)}`;
  }

  private async call<T>(
    what: string,
    method: string,
    path: string,
    token: GangwayAuth,
    opts: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<{ status: number; headers: Headers; body: T }> {
    const signals = [AbortSignal.timeout(this.timeoutMs)];
    if (opts.signal) signals.push(opts.signal);
    const res = await this.fetchImpl(`${this.baseUrl}${path}`, {
      method,
      headers: {
        ...authHeaders(token),
        Accept: 'application/json',
        'User-Agent': this.userAgent,
        ...(opts.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        ...opts.headers,
      },
      body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
      signal: AbortSignal.any(signals),
    });
    const text = await res.text();
    if (!res.ok) {
      let problem: GangwayProblem | undefined;
      try {
        const p = JSON.parse(text);
        if (p && typeof p === 'object' && typeof p.code === 'string') problem = p as GangwayProblem;
      } catch {
        /* not JSON: the body text goes into the message */
      }
      throw new GangwayError(what, res.status, problem, text);
    }
    return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as T };
  }

  async listActions(token: GangwayAuth): Promise<ActionSummary[]> {
    const r = await this.call<{ items: ActionSummary[] }>('list actions', 'GET', '/v1/actions', token);
    return r.body.items ?? [];
  }

  async getAction(token: GangwayAuth, id: string): Promise<Action> {
    return (await this.call<Action>(`action ${id}`, 'GET', `/v1/actions/${encodeURIComponent(id)}`, token)).body;
  }

  async submitRun(token: GangwayAuth, action: string, req: RunRequest, idempotencyKey?: string): Promise<Submitted> {
    const r = await this.call<Run>(`submit ${action}`, 'POST', `/v1/actions/${encodeURIComponent(action)}/runs`, token, {
      body: req,
      headers: idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {},
    });
    return { run: r.body, replayed: r.headers.get('idempotent-replayed') === 'true' };
  }

  async validateRun(token: GangwayAuth, action: string, req: RunRequest): Promise<ValidateResult> {
    const path = `/v1/actions/${encodeURIComponent(action)}/validate`;
    return (await this.call<ValidateResult>(`validate ${action}`, 'POST', path, token, { body: req })).body;
  }

  async getRun(token: GangwayAuth, id: string, signal?: AbortSignal): Promise<Run> {
    return (await this.call<Run>(`run ${id}`, 'GET', `/v1/runs/${encodeURIComponent(id)}`, token, { signal })).body;
  }

  /** Cancels a run; a run that already ended (409 run_ended) is not an error. */
  async cancelRun(token: GangwayAuth, id: string, reason: string): Promise<Run | undefined> {
    try {
      const r = await this.call<Run>(`cancel ${id}`, 'POST', `/v1/runs/${encodeURIComponent(id)}/cancel`, token, {
        body: { reason: reason.slice(0, 500) },
      });
      return r.body;
    } catch (e) {
      if (e instanceof GangwayError && e.problem?.code === 'run_ended') return undefined;
      throw e;
    }
  }

  async getResource(token: GangwayAuth, id: string): Promise<Resource> {
    return (await this.call<Resource>(`resource ${id}`, 'GET', `/v1/resources/${encodeURIComponent(id)}`, token))
      .body;
  }

  /** Every resource the token may see with `status`, following next_cursor. */
  async listResources(token: GangwayAuth, status?: Resource['status']): Promise<Resource[]> {
    const out: Resource[] = [];
    let cursor: string | null | undefined;
    do {
      const q = new URLSearchParams({ limit: '500' });
      if (status) q.set('status', status);
      if (cursor) q.set('cursor', cursor);
      const r = await this.call<{ items: Resource[]; next_cursor?: string | null }>(
        'list resources',
        'GET',
        `/v1/resources?${q}`,
        token,
      );
      out.push(...(r.body.items ?? []));
      cursor = r.body.next_cursor;
    } while (cursor);
    return out;
  }

  /**
   * Opens an event stream (GET `path`, Accept: text/event-stream) and reads
   * it until it closes, goes idle or `signal` aborts. A refusal (4xx/5xx)
   * rejects with a GangwayError before any event.
   */
  async stream(
    path: string,
    token: GangwayAuth,
    onEvent: (e: SseEvent) => void,
    opts: { lastEventId?: string; signal?: AbortSignal; idleTimeoutMs?: number } = {},
  ): Promise<SseEnd> {
    const connect = AbortSignal.timeout(this.timeoutMs);
    const both = new AbortController();
    const abort = () => both.abort();
    connect.addEventListener('abort', abort, { once: true });
    opts.signal?.addEventListener('abort', abort, { once: true });
    try {
      const res = await this.fetchImpl(`${this.baseUrl}${path}`, {
        headers: {
          ...authHeaders(token),
          Accept: 'text/event-stream',
          'User-Agent': this.userAgent,
          ...(opts.lastEventId !== undefined ? { 'Last-Event-ID': opts.lastEventId } : {}),
        },
        signal: both.signal,
      });
      /* Connected: the connect timeout no longer applies, the idle timer does. */
      connect.removeEventListener('abort', abort);
      if (!res.ok) {
        const text = await res.text();
        let problem: GangwayProblem | undefined;
        try {
          problem = JSON.parse(text) as GangwayProblem;
        } catch {
          /* keep the text */
        }
        throw new GangwayError(`stream ${path}`, res.status, problem, text);
      }
      return await readSse(res, onEvent, { signal: both.signal, idleTimeoutMs: opts.idleTimeoutMs });
    } catch (e) {
      if (opts.signal?.aborted) return 'aborted';
      throw e;
    } finally {
      connect.removeEventListener('abort', abort);
      opts.signal?.removeEventListener('abort', abort);
    }
  }
}
