import { describe, expect, it } from 'vitest';
import { pointerErrors, ttlChoices, uiSchemaFor, whyCannotDecide, newIdempotencyKey, redactInputs } from './util';
import type { Me, Run } from './api';

describe('pointerErrors', () => {
  it('puts each server error under its field, stripping /inputs', () => {
    const { schema, rest } = pointerErrors(
      [
        { pointer: '/inputs/message', message: 'longer than 200' },
        { pointer: '/inputs/labels/a~1b', message: 'too long' },
        { pointer: '/inputs', message: 'missing name' },
        { pointer: '/ttl_seconds', message: 'over max' },
      ],
      '/inputs',
    );
    expect(schema).toEqual({
      __errors: ['missing name'],
      message: { __errors: ['longer than 200'] },
      labels: { 'a/b': { __errors: ['too long'] } },
    });
    expect(rest).toEqual([{ pointer: '/ttl_seconds', message: 'over max' }]);
  });
});

describe('uiSchemaFor', () => {
  it('makes writeOnly strings password inputs, nested too', () => {
    const ui = uiSchemaFor({
      type: 'object',
      properties: {
        name: { type: 'string' },
        api_token: { type: 'string', writeOnly: true },
        db: { type: 'object', properties: { password: { type: 'string', writeOnly: true } } },
      },
    });
    expect(ui).toEqual({ api_token: { 'ui:widget': 'password' }, db: { password: { 'ui:widget': 'password' } } });
  });
});

describe('ttlChoices', () => {
  it('offers the default and steps, never beyond max_seconds', () => {
    const c = ttlChoices({ ttl: { default_seconds: 7200, max_seconds: 2 * 86400 } });
    const secs = c.map((x) => x.seconds);
    expect(secs).toContain(7200);
    expect(secs).toContain(2 * 86400);
    expect(Math.max(...secs)).toBe(2 * 86400);
    expect(secs).toEqual([...secs].sort((a, b) => a - b));
  });
  it('offers nothing without ttl rules', () => {
    expect(ttlChoices({})).toEqual([]);
  });
});

const me = (subject: string, teams: string[], extra: Partial<Me> = {}): Me => ({
  subject,
  teams,
  roles: [],
  worker: false,
  permissions: [],
  actions: { deploy: { decide_approvals: {} } },
  other_runs: {},
  policy: 'test',
  ...extra,
});
const run = (by: string): Run => ({
  id: 'r1',
  action: { id: 'deploy' },
  status: 'pending_approval',
  attempt: 1,
  inputs: { env: 'prod', token: 'x' },
  secret_inputs: ['token'],
  requested_by: { subject: by, teams: ['payments'] },
  created_at: '2026-01-01T00:00:00Z',
  approval: { required: 1, remaining: 1, from_teams: ['sre'] },
});

describe('whyCannotDecide', () => {
  it('tells the requester why they cannot approve their own run', () => {
    expect(whyCannotDecide(me('bob', ['sre']), run('bob'))).toMatch(/You requested this run/);
  });
  it('names the teams the rule asks for', () => {
    expect(whyCannotDecide(me('dan', ['payments']), run('bob'))).toMatch(/team sre/);
  });
  it('lets a named approver decide', () => {
    expect(whyCannotDecide(me('carol', ['sre']), run('bob'))).toBeNull();
  });
  it('hides the buttons when the policy denies decide_approvals', () => {
    expect(whyCannotDecide(me('carol', ['sre'], { actions: {} }), run('bob'))).toMatch(/policy/);
  });
});

describe('misc', () => {
  it('makes a distinct printable idempotency key per call', () => {
    const a = newIdempotencyKey();
    expect(a).toMatch(/^[ -~]{1,255}$/);
    expect(newIdempotencyKey()).not.toBe(a);
  });
  it('masks secret inputs', () => {
    expect(redactInputs(run('bob'))).toEqual({ env: 'prod', token: '••••••' });
  });
});
