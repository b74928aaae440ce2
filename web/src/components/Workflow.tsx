import { useState } from 'react';
import { Link } from 'react-router';
import { get, post, type ActionSummary, type Run, type RunStatus, type StepDef, type StepRun } from '../api';
import { useSession } from '../session';
import { canCancel } from '../util';
import { ErrorBox, StatusBadge, useLoad } from './common';

export interface StepRow {
  id: string;
  /** The step's latest run (a resumed workflow may have several). */
  run?: StepRun;
  /** Earlier runs of the same step, oldest first. */
  earlier: StepRun[];
  status: RunStatus | 'skipped' | 'not_started';
  failed: boolean;
  hasUndo?: boolean;
  needsApproval?: boolean;
}

/** A workflow's steps in the action's order (the catalog's `steps`; steps
 *  the definition no longer has come after, in the order they started),
 *  each with its latest run, and the undo runs in the order they ran. */
export function workflowRows(run: Run, defs?: StepDef[] | null): { steps: StepRow[]; undos: StepRun[] } {
  const all = run.steps ?? [];
  const creates = all.filter((s) => s.operation !== 'undo');
  const undos = all.filter((s) => s.operation === 'undo');
  const ids: string[] = [];
  for (const d of defs ?? []) if (!ids.includes(d.id)) ids.push(d.id);
  for (const s of creates) if (!ids.includes(s.id)) ids.push(s.id);
  for (const s of run.skipped_steps ?? []) if (!ids.includes(s)) ids.push(s);
  const steps = ids.map((id): StepRow => {
    const runs = creates.filter((s) => s.id === id);
    const last = runs[runs.length - 1];
    const def = defs?.find((d) => d.id === id);
    return {
      id,
      run: last,
      earlier: runs.slice(0, -1),
      status: last ? last.status : (run.skipped_steps ?? []).includes(id) ? 'skipped' : 'not_started',
      failed: run.failed_step === id,
      hasUndo: def?.undo,
      needsApproval: def?.approval,
    };
  });
  return { steps, undos };
}

export function isWorkflow(run: Run): boolean {
  return run.worker_type === 'workflow' || Array.isArray(run.steps);
}

/** The steps of a workflow run, its compensation and, for a failed or timed
 *  out one, the Resume button (POST /v1/runs/{id}/resume: the permission to
 *  cancel), asking for the secret inputs the workflow dropped. */
export function WorkflowSteps({ run, onChange }: { run: Run; onChange: (r: Run) => void }) {
  const { me } = useSession();
  const action = useLoad(
    (s) => get<ActionSummary>('/v1/actions/' + encodeURIComponent(run.action.id), s).catch(() => null),
    [run.action.id],
  );
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [secrets, setSecrets] = useState<Record<string, string>>({});
  if (!isWorkflow(run)) return null;
  const { steps, undos } = workflowRows(run, action.data?.steps);
  // A workflow drops its secret inputs when it ends: a resume gives them
  // again (docs/workflows.md), at their place in the inputs.
  const secretPointers = run.secret_inputs ?? [];
  const secretsMissing = secretPointers.some((p) => !secrets[p]);
  const resume = async () => {
    setBusy(true);
    setError(null);
    try {
      const body = secretPointers.length > 0 ? { inputs: inputsAt(secretPointers, secrets) } : {};
      onChange(await post<Run>('/v1/runs/' + run.id + '/resume', body));
      setSecrets({});
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="steps" data-testid="workflow">
      <h2 id="steps">Steps</h2>
      <ol className="steps">
        {steps.map((s) => (
          <li key={s.id} data-step={s.id} className={s.failed ? 'failed-step' : undefined}>
            <strong>{s.id}</strong> <StatusBadge status={s.status} />
            {s.run ? (
              <Link to={'/runs/' + s.run.run_id} aria-label={'Step ' + s.id + ' run'}>
                run
              </Link>
            ) : null}
            {s.failed ? <span className="error"> · the step that failed</span> : null}
            {s.needsApproval ? <span className="muted"> · needs approval</span> : null}
            {s.earlier.length > 0 && (
              <span className="muted">
                {' '}
                · earlier:{' '}
                {s.earlier.map((e, i) => (
                  <span key={e.run_id}>
                    {i > 0 ? ', ' : ''}
                    <Link to={'/runs/' + e.run_id}>{e.status.replace(/_/g, ' ')}</Link>
                  </span>
                ))}
              </span>
            )}
          </li>
        ))}
      </ol>
      {(undos.length > 0 || run.compensated !== undefined) && (
        <>
          <h3>Compensation</h3>
          <p data-testid="compensated">
            {run.compensated === true
              ? 'Compensated: every undo that ran succeeded.'
              : run.compensated === false
                ? 'Not compensated: an undo failed, what exists is unknown.'
                : 'Undoing the completed steps…'}
          </p>
          {undos.length > 0 && (
            <ol className="steps undos" aria-label="Undo runs">
              {undos.map((u) => (
                <li key={u.run_id} data-undo={u.id}>
                  undo <strong>{u.id}</strong> <StatusBadge status={u.status} />
                  <Link to={'/runs/' + u.run_id} aria-label={'Undo of ' + u.id + ' run'}>
                    run
                  </Link>
                </li>
              ))}
            </ol>
          )}
        </>
      )}
      {(run.status === 'failed' || run.status === 'timed_out') && canCancel(me, run) && (
        <div className="resume" data-testid="resume">
          {secretPointers.length > 0 && (
            <fieldset>
              <legend>Secret inputs, dropped when the workflow ended: give them again</legend>
              {secretPointers.map((p) => (
                <div key={p}>
                  <label htmlFor={'secret-' + p}>{p.replace(/^\//, '')}</label>
                  <input
                    id={'secret-' + p}
                    type="password"
                    autoComplete="off"
                    value={secrets[p] ?? ''}
                    onChange={(e) => setSecrets({ ...secrets, [p]: e.target.value })}
                  />
                </div>
              ))}
            </fieldset>
          )}
          <div className="actions-row">
            <button
              type="button"
              className="primary"
              disabled={busy || secretsMissing}
              onClick={() => void resume()}
            >
              {run.status === 'timed_out' ? 'Resume (its deadline starts again)' : 'Resume from the failed step'}
            </button>
            <span className="hint">Steps that succeeded and were not undone are kept.</span>
          </div>
        </div>
      )}
      <ErrorBox error={error} />
    </section>
  );
}

/** On a child run: the run it belongs to (a workflow's step or undo, a
 *  drift check of the run that made a resource). */
/** The inputs object holding each secret at its JSON pointer ("/db/password"). */
export function inputsAt(pointers: string[], values: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of pointers) {
    const keys = p
      .replace(/^\//, '')
      .split('/')
      .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
    let at: Record<string, unknown> = out;
    keys.forEach((k, i) => {
      if (i === keys.length - 1) at[k] = values[p];
      else at = (at[k] ??= {}) as Record<string, unknown>;
    });
  }
  return out;
}

export function ParentLink({ run }: { run: Run }) {
  if (!run.parent_run) return null;
  const to = <Link to={'/runs/' + run.parent_run}>{run.step ? 'its workflow run' : 'its parent run'}</Link>;
  return (
    <p data-testid="parent-run">
      {run.step ? (
        <>
          {run.operation === 'undo' ? 'Undo of step ' : 'Step '}
          <strong>{run.step}</strong> of {to}
        </>
      ) : (
        <>
          {run.operation === 'drift' ? 'Drift check' : 'Child run (' + (run.operation ?? 'create') + ')'} of {to}
        </>
      )}
    </p>
  );
}
