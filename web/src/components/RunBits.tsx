import { useState } from 'react';
import { post, type Finding, type Run } from '../api';
import { useSession } from '../session';
import { whyCannotDecide } from '../util';
import { ErrorBox, Json } from './common';

export interface Plan {
  sha256?: string;
  summary?: { add?: number; change?: number; destroy?: number; [k: string]: unknown };
}

export function planOf(run: Run): Plan | null {
  const p = (run as unknown as { plan?: Plan }).plan ?? (run.approval as { plan?: Plan } | undefined)?.plan;
  return p && typeof p === 'object' ? p : null;
}

export function PlanSummary({ run }: { run: Run }) {
  const plan = planOf(run);
  if (!plan) return null;
  const s = plan.summary ?? {};
  return (
    <div className="plan" aria-label="Plan summary">
      <strong>Plan:</strong> <span className="add">+{s.add ?? 0} to add</span>, <span className="change">~{s.change ?? 0} to change</span>,{' '}
      <span className="destroy">−{s.destroy ?? 0} to destroy</span>
      {plan.sha256 && (
        <span className="muted">
          {' '}
          · sha256 <code>{plan.sha256.slice(0, 12)}…</code>
        </span>
      )}
    </div>
  );
}

/** The findings of the plan checks (docs/plan-checks.md): rule, severity,
 *  address, message. Nothing when the run has no checks. */
export function PlanFindings({ run }: { run: Run }) {
  const pc = run.plan_checks;
  if (!pc) return null;
  const fs: Finding[] = pc.findings ?? [];
  return (
    <div className="findings" data-testid="findings" aria-label="Plan check findings">
      <p>
        <strong>Plan checks:</strong>{' '}
        {pc.passed ? (
          <span className="badge status-succeeded">passed</span>
        ) : (
          <span className="badge status-failed">failed</span>
        )}
        {fs.length ? ' · ' + fs.length + ' finding' + (fs.length === 1 ? '' : 's') : ''}
      </p>
      {fs.length > 0 && (
        <ul className="finding-list">
          {fs.map((f, i) => (
            <li key={i} data-rule={f.rule}>
              <span className={'badge severity-' + (f.severity ?? 'unknown').toLowerCase()}>{f.severity ?? 'no severity'}</span>{' '}
              <code>{f.rule}</code>
              {f.check && f.check !== f.rule ? <span className="muted"> ({f.check})</span> : null}
              {f.address ? (
                <>
                  {' '}
                  at <code>{f.address}</code>
                </>
              ) : null}
              <div className="finding-message">{f.message}</div>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Decisions({ run }: { run: Run }) {
  const ds = run.approval?.decisions ?? [];
  if (!ds.length) return <p className="muted">No decision yet.</p>;
  return (
    <ul className="decisions">
      {ds.map((d, i) => (
        <li key={i}>
          <strong>{d.approver}</strong> {d.decision === 'approve' ? 'approved' : 'rejected'} at {new Date(d.at).toLocaleString()}
          {d.comment ? <>: “{d.comment}”</> : null}
        </li>
      ))}
    </ul>
  );
}

/** Approve / reject with a comment; for the requester (or anyone the policy
 *  does not name) the reason instead of the buttons. */
export function DecisionBox({ run, onDecided }: { run: Run; onDecided: (r: Run) => void }) {
  const { me } = useSession();
  const [comment, setComment] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [ack, setAck] = useState(false);
  if (run.status !== 'pending_approval') return null;
  // A failed compliance check overridable by approval: approving says the
  // findings were read (the broker refuses it otherwise, 422).
  const mustAck = run.approval?.findings_to_acknowledge === true;
  const why = whyCannotDecide(me, run);
  if (why) {
    return (
      <p className="cannot-decide" data-testid="cannot-decide">
        {why}
      </p>
    );
  }
  const cid = 'comment-' + run.id;
  const decide = async (decision: 'approve' | 'reject') => {
    if (decision === 'reject' && !comment.trim()) {
      setError(new Error('Say why in the comment when rejecting.'));
      return;
    }
    if (decision === 'approve' && mustAck && !ack) {
      setError(new Error('Acknowledge the plan check findings before approving.'));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const body: Record<string, string | boolean> = { decision };
      if (comment.trim()) body.comment = comment.trim();
      if (decision === 'approve' && mustAck) body.acknowledge_findings = true;
      onDecided(await post<Run>('/v1/runs/' + run.id + '/decisions', body));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="decide">
      <label htmlFor={cid}>Comment</label>
      <textarea id={cid} maxLength={2000} value={comment} onChange={(e) => setComment(e.target.value)} />
      {mustAck && (
        <div className="ack">
          <input id={'ack-' + run.id} type="checkbox" checked={ack} onChange={(e) => setAck(e.target.checked)} />{' '}
          <label htmlFor={'ack-' + run.id}>
            I have read the {run.plan_checks?.findings?.length ?? ''} plan check finding(s) and approve despite them
          </label>
        </div>
      )}
      <div className="buttons">
        <button type="button" className="primary" disabled={busy || (mustAck && !ack)} onClick={() => void decide('approve')}>
          Approve
        </button>
        <button type="button" className="danger" disabled={busy} onClick={() => void decide('reject')}>
          Reject
        </button>
      </div>
      <ErrorBox error={error} />
    </div>
  );
}

export function Inputs({ run }: { run: Run }) {
  return <Json value={run.inputs} />;
}
