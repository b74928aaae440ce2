import { useCallback, useEffect, useRef, useState } from 'react';
import { Link, useParams } from 'react-router';
import { ApiError, get, post, qs, TERMINAL, type Page, type Resource, type Run, type RunEvent } from '../api';
import { Countdown, ErrorBox, Json, Loading, StatusBadge } from '../components/common';
import { LogView, useRunLogs } from '../components/LogView';
import { Decisions, DecisionBox, PlanFindings, PlanSummary } from '../components/RunBits';
import { ParentLink, WorkflowSteps } from '../components/Workflow';
import { useSession } from '../session';
import { follow } from '../sse';
import { canCancel, formatTime, isAdmin, redactInputs } from '../util';

/** The run's inputs to prefill a new request with: secret inputs are left
 *  out (the broker never returns them), to be typed again. */
function redactFree(run: Run): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(run.inputs ?? {}) };
  for (const k of run.secret_inputs ?? []) delete out[k.startsWith('/') ? k.slice(1) : k];
  return out;
}

export default function RunPage() {
  const { id = '' } = useParams();
  const { me } = useSession();
  const [run, setRun] = useState<Run | null>(null);
  const [events, setEvents] = useState<RunEvent[]>([]);
  const [resource, setResource] = useState<Resource | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [viaInbox, setViaInbox] = useState(false);
  const [actionError, setActionError] = useState<unknown>(null);
  const [confirmCancel, setConfirmCancel] = useState(false);
  const [cancelReason, setCancelReason] = useState('');
  const logs = useRunLogs(id);
  const cancelBtn = useRef<HTMLButtonElement>(null);
  const runRef = useRef<Run | null>(null);
  runRef.current = run;

  const load = useCallback(async () => {
    try {
      let r: Run;
      try {
        r = await get<Run>('/v1/runs/' + encodeURIComponent(id));
        setViaInbox(false);
      } catch (e) {
        // An approver outside the run's read scope: GET /v1/runs/{id} answers
        // 404 while /v1/approvals lists the run, so the deep link a
        // notification carries still leads to the decision.
        if (!(e instanceof ApiError) || e.status !== 404) throw e;
        const inbox = await get<Page<Run>>('/v1/approvals').catch(() => ({ items: [] as Run[] }));
        const found = inbox.items.find((x) => x.id === id);
        if (!found) throw e;
        r = found;
        setViaInbox(true);
      }
      setRun(r);
      setError(null);
      // The rest is extra: an approver may see the run but not (yet) all of it.
      get<Page<RunEvent> | RunEvent[]>('/v1/runs/' + encodeURIComponent(id) + '/events')
        .then((ev) => setEvents(Array.isArray(ev) ? ev : ev.items))
        .catch(() => setEvents([]));
      if (r.status === 'succeeded') {
        get<Page<Resource>>('/v1/resources' + qs({ limit: 500 }))
          .then((rs) => setResource(rs.items.find((x) => x.created_by_run === r.id) ?? null))
          .catch(() => setResource(null));
      }
    } catch (e) {
      setError(e);
    }
  }, [id]);

  useEffect(() => {
    setRun(null);
    void load();
  }, [load]);

  // Live status: every transition of this run reloads it.
  useEffect(() => {
    // The stream starts at the present: a transition between our GET and the
    // stream's opening (or while it was reconnecting) would be missed, so
    // every (re)opening reloads the run once.
    const f = follow({
      url: '/v1/events',
      events: ['run'],
      onState: (st) => {
        if (st === 'open') void load();
      },
      onEvent: (_n, data) => {
        const ev = data as { run_id?: string; action?: string };
        // A workflow's steps are runs of their own (of the same action):
        // their transitions change what the Steps section shows.
        const wf = runRef.current;
        if (ev.run_id === id || (wf && wf.worker_type === 'workflow' && !TERMINAL.includes(wf.status) && ev.action === wf.action.id))
          void load();
      },
    });
    return () => f.close();
  }, [id, load]);
  useEffect(() => {
    if (logs.end) void load();
  }, [logs.end, load]);

  if (!run && error instanceof ApiError && error.status === 404)
    return (
      <section>
        <h1>Run not found</h1>
        <p>There is no run {id}, or you may not see it.</p>
      </section>
    );
  if (!run) return error ? <ErrorBox error={error} /> : <Loading />;

  const ended = TERMINAL.includes(run.status);
  const doCancel = async () => {
    setActionError(null);
    try {
      setRun(await post<Run>('/v1/runs/' + run.id + '/cancel', cancelReason.trim() ? { reason: cancelReason.trim() } : {}));
      setConfirmCancel(false);
      void load();
    } catch (e) {
      setActionError(e);
    }
  };
  const reconcile = async () => {
    setActionError(null);
    try {
      setRun(await post<Run>('/v1/runs/' + run.id + '/reconcile', {}));
    } catch (e) {
      setActionError(e);
    }
  };

  return (
    <section>
      <p>
        <Link to="/runs">← Runs</Link>
      </p>
      <h1>
        Run of <Link to={'/actions/' + encodeURIComponent(run.action.id)}>{run.action.id}</Link> <StatusBadge status={run.status} />
      </h1>
      <p className="muted">
        <code>{run.id}</code> · requested by {run.requested_by.subject}
        {run.requested_by.teams?.length ? ' (' + run.requested_by.teams.join(', ') + ')' : ''} · {formatTime(run.created_at)} · attempt{' '}
        {run.attempt}
      </p>
      <ParentLink run={run} />
      {run.reason && <p>Reason: {run.reason}</p>}
      {run.error && (
        <p className="error">
          {run.error.code}: {run.error.message}
        </p>
      )}
      {run.needs_reconciliation && <p className="warn">This run needs reconciliation: check the target system.</p>}
      <div className="actions-row">
        {!ended && canCancel(me, run) && !confirmCancel && (
          <button type="button" className="danger" ref={cancelBtn} onClick={() => setConfirmCancel(true)}>
            Cancel run…
          </button>
        )}
        {run.needs_reconciliation && isAdmin(me) && (
          <button type="button" onClick={() => void reconcile()}>
            Mark reconciled
          </button>
        )}
        {ended && !run.step && (run.status === 'failed' || run.status === 'timed_out' || run.status === 'cancelled') && (
          <Link className="button" to={'/actions/' + encodeURIComponent(run.action.id)} state={{ inputs: redactFree(run) }}>
            Request again
          </Link>
        )}
      </div>
      {confirmCancel && (
        <div role="alertdialog" aria-labelledby="cc-title" className="confirm">
          <p id="cc-title">Cancel this run? A running job is told to stop.</p>
          <label htmlFor="cancel-reason">Reason (optional)</label>
          <input id="cancel-reason" maxLength={500} value={cancelReason} onChange={(e) => setCancelReason(e.target.value)} autoFocus />
          <button type="button" className="danger" onClick={() => void doCancel()}>
            Yes, cancel it
          </button>
          <button type="button" onClick={() => setConfirmCancel(false)}>
            Keep it running
          </button>
        </div>
      )}
      <ErrorBox error={actionError} />

      {run.status === 'pending_approval' || run.approval ? (
        <section aria-labelledby="appr">
          <h2 id="appr">Approval</h2>
          {run.approval && (
            <p>
              {run.approval.remaining ?? 0} of {run.approval.required ?? 0} approval(s) still needed
              {run.approval.from_teams?.length ? ' from ' + run.approval.from_teams.join(', ') : ''}
              {run.approval.expires_at && run.status === 'pending_approval' ? (
                <>
                  {' '}
                  · <Countdown at={run.approval.expires_at} />
                </>
              ) : null}
            </p>
          )}
          <PlanSummary run={run} />
          <PlanFindings run={run} />
          <Decisions run={run} />
          <DecisionBox run={run} onDecided={(r) => setRun(r)} />
        </section>
      ) : (
        <>
          <PlanSummary run={run} />
          <PlanFindings run={run} />
        </>
      )}

      <WorkflowSteps
        run={run}
        onChange={(r) => {
          setRun(r);
          void load();
        }}
      />

      <section aria-labelledby="inp">
        <h2 id="inp">Inputs</h2>
        <Json value={redactInputs(run)} />
        {run.justification && <p>Justification: {run.justification}</p>}
      </section>

      <section aria-labelledby="tl">
        <h2 id="tl">Timeline</h2>
        <ol className="timeline">
          {events.map((e) => (
            <li key={e.id}>
              <time dateTime={e.at}>{formatTime(e.at)}</time> {e.from ? e.from.replace(/_/g, ' ') + ' → ' : ''}
              <strong>{e.to.replace(/_/g, ' ')}</strong>
              {e.reason ? ' — ' + e.reason : ''}
              {e.actor ? <span className="muted"> by {e.actor}</span> : null}
            </li>
          ))}
        </ol>
      </section>

      {viaInbox ? (
        <p className="muted">You see this run as an approver: its logs and timeline are for those who may read it.</p>
      ) : (
        <section aria-labelledby="lg">
          <h2 id="lg">Logs</h2>
          <LogView lines={logs.lines} state={logs.state} />
        </section>
      )}

      {run.outputs && Object.keys(run.outputs).length > 0 && (
        <section aria-labelledby="out">
          <h2 id="out">Outputs</h2>
          <Json value={run.outputs} />
        </section>
      )}
      {resource && (
        <section aria-labelledby="res">
          <h2 id="res">Resource</h2>
          <p>
            <Link to={'/resources/' + resource.id}>
              {resource.kind} {resource.name}
            </Link>{' '}
            <StatusBadge status={resource.status} /> · expires <Countdown at={resource.expires_at} />
          </p>
        </section>
      )}
    </section>
  );
}
