// The console's only way to the broker: same-origin fetch with the session
// cookie (HttpOnly, set by POST /v1/session) and, on every state-changing
// request, the session's CSRF token in X-CSRF-Token (docs/console.md).
// There is deliberately no bearer-token fallback: a token pasted on the login
// page is exchanged for a session once and never kept in the browser.

export interface ProblemError {
  pointer: string;
  message: string;
  keyword?: string;
}

export interface Problem {
  type?: string;
  title?: string;
  status: number;
  code: string;
  detail: string;
  errors?: ProblemError[];
}

export class ApiError extends Error {
  status: number;
  problem: Problem;
  constructor(problem: Problem) {
    super(problem.detail || problem.title || problem.code);
    this.status = problem.status;
    this.problem = problem;
  }
}

let csrfToken: string | null = null;

export function setCsrfToken(t: string | null): void {
  csrfToken = t;
}

export function getCsrfToken(): string | null {
  return csrfToken;
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

const SAFE = new Set(['GET', 'HEAD']);

export async function request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...(opts.headers ?? {}) };
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  if (!SAFE.has(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body, credentials: 'same-origin', signal: opts.signal });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError({ status: 0, code: 'network_error', detail: 'The broker cannot be reached: ' + String((e as Error).message ?? e) });
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown = undefined;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }
  if (!res.ok) {
    const p = (data && typeof data === 'object' ? data : {}) as Partial<Problem>;
    throw new ApiError({
      status: res.status,
      code: p.code ?? 'http_' + res.status,
      detail: p.detail ?? (text.slice(0, 200) || res.statusText),
      title: p.title,
      errors: p.errors,
    });
  }
  return data as T;
}

export const get = <T = unknown>(path: string, signal?: AbortSignal) => request<T>('GET', path, { signal });
export const post = <T = unknown>(path: string, body?: unknown, headers?: Record<string, string>) =>
  request<T>('POST', path, { body: body ?? {}, headers });
export const del = <T = unknown>(path: string) => request<T>('DELETE', path);

export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? '?' + s : '';
}

// ---- shapes (schemas/openapi.json) -------------------------------------

export interface Session {
  subject: string;
  teams: string[];
  roles: string[];
  csrf_token: string;
  expires_at?: string;
}

export interface Scope {
  scope: 'own' | 'team' | 'all';
}
export interface Grant {
  when_inputs?: Record<string, unknown[]>[];
}
export interface ActionPerms {
  run?: Grant;
  decide_approvals?: Grant;
  break_glass?: Grant;
  read_runs?: Scope;
  cancel?: Scope;
  manage_resources?: Scope;
}
export interface Me {
  subject: string;
  teams: string[];
  roles: string[];
  worker: boolean;
  permissions: string[];
  actions: Record<string, ActionPerms>;
  other_runs: ActionPerms;
  policy: string;
}

export interface TtlRules {
  default_seconds?: number;
  max_seconds?: number;
  max_extension_seconds?: number;
  warn_before_seconds?: number;
  extension_approval?: { approvals?: number; from_teams?: string[]; from_roles?: string[] };
}

export interface ApprovalRule {
  when?: Record<string, unknown[]>;
  approvals?: number;
  from_teams?: string[];
  from_roles?: string[];
  plan_first?: boolean;
}

/** A workflow's step as the catalog publishes it (docs/workflows.md). */
export interface StepDef {
  id: string;
  worker_type: string;
  needs?: string[];
  approval?: boolean;
  undo?: boolean;
}

export interface ActionSummary {
  id: string;
  version: string;
  title: string;
  description?: string;
  worker_type: string;
  tags?: string[] | null;
  timeout_seconds?: number;
  retryable?: boolean;
  ttl?: TtlRules;
  resource?: { kind?: string };
  approval?: { rules?: ApprovalRule[]; approvals?: number; expires_after_seconds?: number } | null;
  workers?: { seen?: boolean; last_seen_at?: string | null };
  steps?: StepDef[];
}

export interface Action extends ActionSummary {
  inputs: Record<string, unknown>;
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

export const TERMINAL: RunStatus[] = ['succeeded', 'failed', 'timed_out', 'cancelled', 'rejected', 'expired'];

export interface Decision {
  approver: string;
  decision: 'approve' | 'reject';
  comment?: string;
  plan_sha256?: string;
  at: string;
}

/** One finding of a plan check (docs/plan-checks.md). */
export interface Finding {
  check?: string;
  rule: string;
  severity?: string;
  address?: string;
  message: string;
}

export interface PlanChecks {
  passed: boolean;
  findings?: Finding[];
}

/** A workflow's child run: a step (operation create) or an undo. */
export interface StepRun {
  id: string;
  run_id: string;
  status: RunStatus;
  operation: string;
}

export interface Run {
  id: string;
  action: { id: string; version?: string };
  worker_type?: string;
  status: RunStatus;
  reason?: string;
  error?: { code: string; message: string };
  attempt: number;
  inputs: Record<string, unknown>;
  outputs?: Record<string, unknown>;
  ttl_seconds?: number;
  justification?: string;
  secret_inputs?: string[];
  cancel_requested_at?: string;
  cancel_reason?: string;
  approval?: {
    required?: number;
    remaining?: number;
    from_teams?: string[];
    from_roles?: string[];
    plan_first?: boolean;
    expires_at?: string;
    decisions?: Decision[];
    plan?: unknown;
    plan_summary?: unknown;
    findings_to_acknowledge?: boolean;
  };
  plan_checks?: PlanChecks;
  operation?: string;
  parent_run?: string;
  step?: string;
  steps?: StepRun[];
  skipped_steps?: string[];
  failed_step?: string;
  compensated?: boolean;
  break_glass?: { reason?: string };
  plan?: unknown;
  requested_by: { subject: string; teams?: string[] };
  needs_reconciliation?: boolean;
  created_at: string;
  updated_at?: string;
  queued_at?: string;
  started_at?: string;
  finished_at?: string;
  cursor?: string;
}

export interface RunEvent {
  id: number;
  attempt: number;
  from: string | null;
  to: string;
  reason: string | null;
  actor?: string;
  at: string;
}

export interface LogLine {
  pos: number;
  attempt: number;
  seq: number;
  stream: 'stdout' | 'stderr';
  line: string;
  at: string;
}

export type DriftStatus = 'in_sync' | 'drifted' | 'check_failed';

/** The last drift check of a resource (docs/drift.md). */
export interface Drift {
  status: DriftStatus;
  summary?: {
    add?: number;
    change?: number;
    destroy?: number;
    resources?: { address: string; actions?: string[] }[];
    run_status?: string;
    reason?: string;
    [k: string]: unknown;
  } | null;
  checked_at?: string;
  next_at?: string;
  run?: string;
}

export interface Resource {
  id: string;
  action: string;
  kind: string;
  name: string;
  owner: { subject: string; teams?: string[] };
  created_by_run?: string;
  outputs?: Record<string, unknown>;
  status: 'active' | 'tearing_down' | 'teardown_failed' | 'deleted';
  expires_at?: string;
  max_expires_at?: string;
  teardown_run?: string;
  needs_attention?: boolean;
  created_at?: string;
  deleted_at?: string;
  drift?: Drift;
  pending_extension?: { seconds?: number; requested_by?: string; justification?: string; decisions?: Decision[] } | null;
}

export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  verb: string;
  object: string;
  detail: unknown;
  seq: number | null;
  prev_hash: string | null;
  hash: string | null;
}

export interface AuditVerify {
  ok: boolean;
  entries?: number;
  head?: { seq: number; hash: string } | null;
  problems?: unknown[];
}

export interface Dashboard {
  runs_per_day: { day: string; status: string; count: number }[];
  duration_percentiles: { action: string; p50_ms: number; p90_ms: number; p99_ms: number; count: number }[];
  failure_rate: { action: string; total: number; failed: number; rate: number }[];
  approval_wait: { p50_ms: number | null; p90_ms: number | null; count: number };
  queue: { depth: number; oldest_queued_at: string | null };
  top_requesters: { team: string; subject: string; count: number }[];
}

export interface Provider {
  id: string;
  name: string;
  login_url: string;
}
