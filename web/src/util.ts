import type { ActionPerms, ActionSummary, Grant, Me, ProblemError, Run } from './api';

// ---- forms ----------------------------------------------------------------

type ErrorSchema = { __errors?: string[]; [k: string]: unknown };

function unescape(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** Server-side errors (problem+json `errors[].pointer`, JSON Pointers into the
 *  request body or into `inputs`) as rjsf's `extraErrors`, so each message is
 *  shown under its own field. `prefix` is stripped first (e.g. "/inputs").
 *  Errors that do not point into the form are returned in `rest`. */
export function pointerErrors(errors: ProblemError[] | undefined, prefix = ''): { schema: ErrorSchema; rest: ProblemError[] } {
  const schema: ErrorSchema = {};
  const rest: ProblemError[] = [];
  for (const e of errors ?? []) {
    let p = e.pointer ?? '';
    if (prefix) {
      if (p === prefix) p = '';
      else if (p.startsWith(prefix + '/')) p = p.slice(prefix.length);
      else {
        rest.push(e);
        continue;
      }
    }
    const parts = p === '' ? [] : p.split('/').slice(1).map(unescape);
    let node = schema;
    for (const part of parts) {
      node[part] = (node[part] as ErrorSchema) ?? {};
      node = node[part] as ErrorSchema;
    }
    (node.__errors = node.__errors ?? []).push(e.message);
  }
  return { schema, rest };
}

/** rjsf uiSchema derived from the JSON Schema: `writeOnly` strings become
 *  password inputs (the value is never shown back), recursively. */
export function uiSchemaFor(schema: unknown): Record<string, unknown> {
  const ui: Record<string, unknown> = {};
  if (!schema || typeof schema !== 'object') return ui;
  const s = schema as Record<string, unknown>;
  if (s.writeOnly === true && (s.type === 'string' || s.type === undefined)) ui['ui:widget'] = 'password';
  const props = s.properties as Record<string, unknown> | undefined;
  if (props && typeof props === 'object') {
    for (const [k, v] of Object.entries(props)) {
      const sub = uiSchemaFor(v);
      if (Object.keys(sub).length) ui[k] = sub;
    }
  }
  if (s.items && typeof s.items === 'object' && !Array.isArray(s.items)) {
    const sub = uiSchemaFor(s.items);
    if (Object.keys(sub).length) ui.items = sub;
  }
  return ui;
}

/** A fresh Idempotency-Key: one per form instance, so a double click (or a
 *  retry after a lost answer) makes one run. */
export function newIdempotencyKey(): string {
  const c: Crypto = globalThis.crypto;
  if (typeof c.randomUUID === 'function') return 'console-' + c.randomUUID();
  const b = new Uint8Array(16);
  c.getRandomValues(b);
  return 'console-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// ---- TTL ------------------------------------------------------------------

export interface TtlChoice {
  label: string;
  seconds: number;
}

const STEPS = [3600, 4 * 3600, 8 * 3600, 86400, 2 * 86400, 3 * 86400, 7 * 86400, 14 * 86400, 30 * 86400, 90 * 86400];

/** The TTL picker's choices: the action's default, and the usual steps up to
 *  `max_seconds` (never beyond: the broker would answer 422). */
export function ttlChoices(a: Pick<ActionSummary, 'ttl'>): TtlChoice[] {
  const t = a.ttl;
  if (!t) return [];
  const max = t.max_seconds ?? t.default_seconds;
  if (!max) return [];
  const set = new Set<number>();
  if (t.default_seconds && t.default_seconds <= max) set.add(t.default_seconds);
  for (const s of STEPS) if (s <= max) set.add(s);
  set.add(max);
  return [...set].sort((x, y) => x - y).map((s) => ({ seconds: s, label: formatSeconds(s) }));
}

export function formatSeconds(s: number): string {
  if (s <= 0) return '0s';
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  const out: string[] = [];
  if (d) out.push(d + 'd');
  if (h) out.push(h + 'h');
  if (m && d === 0) out.push(m + 'm');
  if (sec && d === 0 && h === 0) out.push(sec + 's');
  return out.join(' ') || '0s';
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return Math.round(ms) + ' ms';
  return formatSeconds(Math.round(ms / 1000));
}

/** "3h 12m left", "expired 5m ago". */
export function timeLeft(iso: string | undefined | null, now = Date.now()): string {
  if (!iso) return '—';
  const diff = Math.round((Date.parse(iso) - now) / 1000);
  return diff >= 0 ? formatSeconds(diff) + ' left' : 'expired ' + formatSeconds(-diff) + ' ago';
}

export function formatTime(iso: string | undefined | null): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (isNaN(d.getTime())) return iso;
  return d.toLocaleString();
}

// ---- permissions (GET /v1/me; the broker still enforces) -------------------

export function permsFor(me: Me | null, actionId: string): ActionPerms {
  if (!me) return {};
  return me.actions?.[actionId] ?? me.other_runs ?? {};
}

export function isAdmin(me: Me | null): boolean {
  return !!me && (me.permissions?.includes('admin') || me.roles?.includes('admin'));
}

function grantMatches(g: Grant | undefined, inputs: Record<string, unknown>): boolean {
  if (!g) return false;
  if (!g.when_inputs) return true;
  return g.when_inputs.some((alt) =>
    Object.entries(alt).every(([k, allowed]) => allowed.some((v) => JSON.stringify(v) === JSON.stringify(inputs[k]))),
  );
}

function scopeCovers(scope: string | undefined, me: Me, run: Pick<Run, 'requested_by'>): boolean {
  if (!scope) return false;
  if (scope === 'all') return true;
  if (run.requested_by.subject === me.subject) return true;
  if (scope === 'team') return (run.requested_by.teams ?? []).some((t) => me.teams.includes(t));
  return false;
}

export function canCancel(me: Me | null, run: Run): boolean {
  if (!me) return false;
  if (isAdmin(me)) return true;
  return scopeCovers(permsFor(me, run.action.id).cancel?.scope, me, run);
}

export function canManageResource(me: Me | null, r: { action: string; owner: { subject: string; teams?: string[] } }): boolean {
  if (!me) return false;
  if (isAdmin(me)) return true;
  return scopeCovers(permsFor(me, r.action).manage_resources?.scope, me, { requested_by: r.owner });
}

/** Why this person cannot decide on this run, or null when the buttons may show. */
export function whyCannotDecide(me: Me | null, run: Run): string | null {
  if (!me) return 'Not signed in.';
  if (run.requested_by.subject === me.subject)
    return 'You requested this run: someone else has to approve it (four-eyes rule).';
  if (run.approval?.decisions?.some((d) => d.approver === me.subject)) return 'You have already decided on this run.';
  if (!isAdmin(me) && !grantMatches(permsFor(me, run.action.id).decide_approvals, run.inputs))
    return 'The policy does not let you decide on this action.';
  const a = run.approval;
  if (a && (a.from_teams?.length || a.from_roles?.length) && !isAdmin(me)) {
    const byTeam = (a.from_teams ?? []).some((t) => me.teams.includes(t));
    const byRole = (a.from_roles ?? []).some((r) => me.roles.includes(r));
    if (!byTeam && !byRole)
      return 'The approval rule asks for ' + [...(a.from_teams ?? []).map((t) => 'team ' + t), ...(a.from_roles ?? []).map((r) => 'role ' + r)].join(' or ') + '.';
  }
  return null;
}

export function canBreakGlass(me: Me | null, actionId: string, inputs: Record<string, unknown>): boolean {
  return grantMatches(permsFor(me, actionId).break_glass, inputs);
}

export function needsApproval(a: ActionSummary): boolean {
  const ap = a.approval;
  if (!ap) return false;
  if (typeof ap.approvals === 'number') return ap.approvals > 0;
  return (ap.rules ?? []).some((r) => (r.approvals ?? 0) > 0);
}

/** Inputs as shown to approvers: secret (writeOnly) inputs masked. The broker
 *  already redacts them; this masks anything it listed as secret. */
export function redactInputs(run: Pick<Run, 'inputs' | 'secret_inputs'>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(run.inputs ?? {}) };
  for (const k of run.secret_inputs ?? []) {
    const key = k.startsWith('/') ? k.slice(1) : k;
    if (key in out) out[key] = '••••••';
  }
  return out;
}
